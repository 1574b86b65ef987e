"""`newsletter build`: check, then render and write the changed issues, the archive and feeds.

Nothing is written if any issue has an error. An issue whose inputs (its file, the files it
collects from, the config, the templates, this version) are unchanged is not rendered again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter.build.archive import write_archive
from newsletter.build.catalog import Catalog
from newsletter.build.check import Progress, render_all
from newsletter.build.output import Manifest, write_if_changed
from newsletter.build.render import Renderer, web_url
from newsletter.problems import Problems
from newsletter.workspace import Workspace, parse_issue_name

ISSUE_FILES = (
    "free.html",
    "free.txt",
    "premium.html",
    "premium.txt",
    "index.html",
    "manifest.json",
)


@dataclass
class BuildReport:
    out: Path
    problems: Problems
    built: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems.has_errors


def issue_dir(out: Path, path: Path) -> Path | None:
    named = parse_issue_name(path)
    return out / named[0] / named[1].isoformat() if named else None


def _up_to_date(folder: Path | None, input_hash: str) -> bool:
    if folder is None:
        return False
    manifest = Manifest.read(folder)
    return (
        manifest is not None
        and manifest.input_hash == input_hash
        and all((folder / name).is_file() for name in ISSUE_FILES)
    )


def build(
    workspace: Workspace,
    paths: list[Path] | None = None,
    out: Path | None = None,
    force: bool = False,
    on_progress: Progress | None = None,
) -> BuildReport:
    config = workspace.config
    out = out or workspace.build_dir
    catalog = Catalog(workspace)
    report = BuildReport(out, Problems())
    files = workspace.issue_files(paths)

    todo: list[Path] = []
    hashes: dict[Path, str] = {}
    for path in files:
        hashes[path] = catalog.input_hash(path)
        if not force and _up_to_date(issue_dir(out, path), hashes[path]):
            report.unchanged.append(path)
        else:
            todo.append(path)

    renderer = Renderer(config, workspace.templates_dir, workspace.display)
    rendered = render_all(catalog, renderer, todo, report.problems, on_progress)
    report.stages = renderer.timings.stages
    if report.problems.has_errors:
        return report

    for result in rendered:
        issue = result.issue
        folder = out / issue.newsletter / issue.date.isoformat()
        manifest = Manifest(
            newsletter=issue.newsletter,
            date=issue.date.isoformat(),
            status=issue.status,
            subject=issue.subject,
            preheader=issue.preheader,
            title=config.newsletters[issue.newsletter].title,
            web_url=web_url(config, issue),
            article_count=len(issue.all_articles),
            input_hash=hashes[issue.path],
            sizes={name: len(text.encode()) for name, text in sorted(result.files.items())},
            warnings=[p.format() for p in result.problems],
            feed_html=result.feed_html,
        )
        contents = {name: text.encode() for name, text in result.files.items()}
        contents["manifest.json"] = manifest.to_bytes()
        for name, data in sorted(contents.items()):
            if write_if_changed(folder / name, data):
                report.written.append(folder / name)
        report.built.append(issue.path)

    every = workspace.issue_files() if paths else files
    manifests = [m for p in every if (d := issue_dir(out, p)) and (m := Manifest.read(d))]
    report.written += write_archive(out, config, renderer.env, manifests)
    return report
