"""Build benchmark: prints figures, asserts nothing.

- one 12-story daily in-process (both tiers, text and web version), median per stage;
- the whole `newsletter build` command on it, as a fresh process;
- `newsletter --help` as a fresh process;
- a full and a no-op rebuild of a generated archive of N issues (default 1,000);
- where Node and npm are present, the official MJML CLI on the same MJML, as a ratio.

Usage: .venv/bin/python bench/bench_build.py [--issues 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Runs, fresh_process
from gen_archive import make_workspace

from newsletter.build.catalog import Catalog
from newsletter.build.issuefile import load_issue
from newsletter.build.output import atomic_write
from newsletter.build.pipeline import build
from newsletter.build.render import VARIANTS, Renderer, views
from newsletter.workspace import Workspace

BENCH = Path(__file__).resolve().parent
NEWSLETTER = str(Path(sys.executable).with_name("newsletter"))


def one_issue(root: Path, runs: int) -> Path:
    paths = make_workspace(root, issues=1)
    ws = Workspace(root)
    path = paths[0]
    stages: dict[str, list[float]] = {
        k: [] for k in ("load", "jinja", "mjml", "inline", "text", "guard+other", "write", "total")
    }
    out = Path(tempfile.mkdtemp())
    renderer = Renderer(ws.config, ws.templates_dir, ws.display)
    renderer.render(load_issue(path, ws.config)[0])  # warm-up: imports, template compilation
    for _ in range(runs):
        renderer.timings.stages.clear()
        t0 = time.perf_counter()
        issue, _ = load_issue(path, ws.config)
        t1 = time.perf_counter()
        result = renderer.render(issue)
        t2 = time.perf_counter()
        for name, text in result.files.items():
            atomic_write(out / name, text.encode())
        t3 = time.perf_counter()
        s = renderer.timings.stages
        stages["load"].append(t1 - t0)
        for key in ("jinja", "mjml", "inline", "text"):
            stages[key].append(s.get(key, 0.0))
        stages["guard+other"].append((t2 - t1) - sum(s.values()))
        stages["write"].append(t3 - t2)
        stages["total"].append(t3 - t0)
    print(
        "One 12-story daily in-process: 2 MJML compiles and inlinings (free, premium), "
        "2 text parts, the web page:"
    )
    for key, values in stages.items():
        print("  " + Runs(values).line(key))
    shutil.rmtree(out)
    return path


def mjml_cli_ratio(root: Path, rounds: int) -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        print("MJML CLI: Node/npm not found, ratio skipped")
        return
    cli = BENCH / "node_modules/.bin/mjml"
    if not cli.exists():
        print("installing the official mjml CLI into bench/node_modules (npm) …")
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(BENCH),
                "mjml",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    ws = Workspace(root)
    catalog = Catalog(ws)
    issue, _ = catalog.load(next((root / "issues/daily").glob("*.md")))
    renderer = Renderer(ws.config, ws.templates_dir, ws.display)
    source = renderer._jinja(
        "email/daily.mjml.j2", issue, VARIANTS[0], views(issue, ws.config, VARIANTS[0].tier)
    )
    mjml_file = root / "free.mjml"
    mjml_file.write_text(source)
    mjml = [str(cli), str(mjml_file), "-o", str(root / "free.mjml.html")]
    ours = [NEWSLETTER, "-w", str(root), "build", "--force"]
    # one after the other, round by round: a busy neighbour slows both sides of a round alike
    fresh_process(mjml, n=1)
    wall: dict[str, list[float]] = {"ours": [], "mjml": []}
    cpu: dict[str, list[float]] = {"ours": [], "mjml": []}
    for _ in range(rounds):
        for side, argv in (("ours", ours), ("mjml", mjml)):
            run = fresh_process(argv, n=1, warm_up=False)
            wall[side] += run.seconds
            cpu[side] += run.cpu_seconds
    ratios = [m / o for o, m in zip(wall["ours"], wall["mjml"], strict=True)]
    cpu_ratios = [m / o for o, m in zip(cpu["ours"], cpu["mjml"], strict=True)]
    print("  " + Runs(wall["mjml"]).line("official MJML CLI, one variant (fresh process)"))
    print("  " + Runs(wall["ours"]).line("`newsletter build --force`, same rounds"))
    print(
        f"  ratio over {rounds} alternating rounds: the MJML CLI (one variant) takes "
        f"{statistics.median(ratios):.2f}x the time of the whole `newsletter build` "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}); CPU time (user+sys) "
        f"{statistics.median(cpu['mjml']) * 1000:.0f} ms vs "
        f"{statistics.median(cpu['ours']) * 1000:.0f} ms: "
        f"{statistics.median(cpu_ratios):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15, help="build vs MJML CLI rounds")
    parser.add_argument("--skip-archive", action="store_true", help="only the one issue")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")

    one_issue(work / "one", args.runs)
    root = str(work / "one")
    command = fresh_process([NEWSLETTER, "-w", root, "build", "--force"], n=5)
    print("  " + command.line("`newsletter build --force` on it (fresh process)"))
    helper = fresh_process([NEWSLETTER, "--help"], n=10)
    print("  " + helper.line("`newsletter --help` (fresh process)"))
    mjml_cli_ratio(work / "one", args.rounds)

    if args.skip_archive:
        shutil.rmtree(work)
        return
    print(f"\nGenerated archive of {args.issues} dailies:")
    make_workspace(work / "many", issues=args.issues)
    ws = Workspace(work / "many")
    t0 = time.perf_counter()
    report = build(ws)
    full = time.perf_counter() - t0
    assert report.ok, [p.format() for p in report.problems.errors][:5]
    print(
        f"  full build in-process: {full:.1f} s ({full / args.issues * 1000:.0f} ms per issue), "
        f"{len(report.written)} files written"
    )
    noop = fresh_process([NEWSLETTER, "-w", str(work / "many"), "build"], n=3)
    print("  " + noop.line("no-op rebuild (fresh process)"))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
