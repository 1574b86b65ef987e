"""The whole build on the sample publication: outputs, determinism, incremental, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

from newsletter.build.pipeline import build
from newsletter.workspace import Workspace

VARIANT_FILES = {
    "free.html",
    "free.txt",
    "premium.html",
    "premium.txt",
    "index.html",
    "manifest.json",
}


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_build_writes_every_output_of_the_sample(ws: Workspace) -> None:
    report = build(ws)
    assert report.ok, [p.format() for p in report.problems]
    out = ws.root / "build"
    for issue in ["daily/2025-05-12", "daily/2025-05-16", "weekly/2025-05-17", "green/2025-05-17"]:
        assert {p.name for p in (out / issue).iterdir()} == VARIANT_FILES
    assert (out / "index.html").is_file()
    for key in ("daily", "weekly", "green"):
        assert (out / key / "feed.xml").is_file()
    manifest = json.loads((out / "daily/2025-05-14/manifest.json").read_text())
    assert manifest["subject"] == "Exporters get more help to weather the tariff war"
    assert manifest["article_count"] == 9
    assert manifest["sizes"]["free.html"] == (out / "daily/2025-05-14/free.html").stat().st_size


def test_building_twice_gives_identical_bytes(ws: Workspace, tmp_path: Path) -> None:
    assert build(ws, out=tmp_path / "a").ok
    assert build(ws, out=tmp_path / "b", force=True).ok
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []


def test_rebuild_rewrites_only_the_changed_issue(ws: Workspace) -> None:
    first = build(ws)
    assert len(first.built) == 7
    again = build(ws)
    assert again.built == [] and again.written == [] and len(again.unchanged) == 7

    path = ws.root / "issues/daily/2025-05-13.md"
    path.write_text(path.read_text().replace("Penang is where", "Penang, we think, is where"))
    third = build(ws)
    built = sorted(ws.display(p) for p in third.built)
    # the weekly and the green bulletin collect from that daily, so they are rebuilt too
    assert built == [
        "issues/daily/2025-05-13.md",
        "issues/green/2025-05-17.md",
        "issues/weekly/2025-05-17.md",
    ]
    changed = sorted(str(p.relative_to(ws.root / "build")) for p in third.written)
    assert "daily/2025-05-13/free.html" in changed
    assert not any(name.startswith("daily/2025-05-12") for name in changed)


def test_an_error_anywhere_writes_nothing(ws: Workspace) -> None:
    assert build(ws).ok
    before = tree(ws.root / "build")
    good = ws.root / "issues/daily/2025-05-12.md"
    good.write_text(good.read_text().replace("Central bank holds", "Central bank firmly holds"))
    bad = ws.root / "issues/daily/2025-05-15.md"
    bad.write_text(
        bad.read_text().replace(
            "    summary: |\n      A HK$3 billion", "    sumary: |\n      A HK$3 billion", 1
        )
    )
    report = build(ws)
    assert not report.ok
    assert [p.format() for p in report.problems.errors] == [
        "issues/daily/2025-05-15.md:8: error: missing required key 'summary' in articles[0]",
        "issues/daily/2025-05-15.md:19: error: unknown key 'sumary' in articles[0] (did you mean 'summary'?)",
    ]
    assert tree(ws.root / "build") == before
