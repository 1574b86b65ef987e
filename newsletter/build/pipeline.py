"""check, build and the in-memory render for preview: one loop (`render_all`), three callers.

- `check` renders every issue in memory, so that template and MJML errors, paywall leaks and
  oversized emails are found before anything is written or sent.
- `build` checks, then writes the changed issues, the archive and the feeds. Nothing is
  written if any issue has an error. An issue whose inputs (its file, the files it collects
  from, the config, the templates, this version) are unchanged is not rendered again.
- `render_preview` renders one issue exactly as `build` would, writes nothing, and fills the
  per-recipient placeholders with sample values (what `newsletter preview` shows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import placeholders
from newsletter.build import attribution
from newsletter.build.archive import write_archive
from newsletter.build.catalog import Catalog
from newsletter.build.output import InputHashes, Manifest, write_if_changed
from newsletter.build.render import RenderedIssue, Renderer, web_url
from newsletter.build.templating import template_files
from newsletter.config import Environment
from newsletter.errors import ConfigError, ConfigProblems, NewsletterError, RenderError
from newsletter.problems import Problem, Problems
from newsletter.workspace import Workspace, parse_issue_name

Progress = Callable[[Path], None]

ISSUE_FILES = (
    "free.html",
    "free.txt",
    "premium.html",
    "premium.txt",
    "index.html",
    "manifest.json",
)
PREVIEWED = ("free.html", "premium.html", "free.txt", "premium.txt")


def render_all(
    catalog: Catalog,
    renderer: Renderer,
    files: list[Path],
    problems: Problems,
    on_progress: Progress | None = None,
) -> list[RenderedIssue]:
    """Load, collect and render each file; problems go into `problems`."""
    rendered = []
    for path in files:
        issue, found = catalog.load(path)
        problems.extend(found)
        if issue is not None:
            issue = catalog.complete(issue, problems)
            try:
                result = renderer.render(issue)
            except RenderError as exc:
                problems.extend([exc.problem])
            else:
                problems.extend(result.problems)
                rendered.append(result)
        if on_progress:
            on_progress(path)
    return rendered


def config_problems(exc: ConfigError) -> Problems:
    problems = Problems()
    if isinstance(exc, ConfigProblems):
        problems.extend(exc.problems)
    else:
        problems.error(str(exc.path or "newsletter.toml"), exc.line, exc.message)
    return problems


# check


def check(workspace: Workspace, paths: list[Path] | None = None, links: bool = False) -> Problems:
    """Every problem in every issue file (or `paths`), the config and the templates at once."""
    try:
        config = workspace.config
    except ConfigError as exc:
        return config_problems(exc)
    catalog = Catalog(workspace)
    renderer = Renderer(config, workspace.templates_dir, workspace.display)
    problems = Problems()
    files = workspace.issue_files(paths)
    rendered = render_all(catalog, renderer, files, problems)
    if links:
        from newsletter.build.links import check_links

        problems.extend(check_links([r.issue for r in rendered], workspace.display))
    return problems


# build


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
        and manifest.articles is not None
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

    inputs = InputHashes(workspace.config_path, lambda: template_files(workspace.templates_dir))
    todo: list[Path] = []
    hashes: dict[Path, str] = {}
    for path in files:
        hashes[path] = inputs.of(path, catalog.sources_of(path))
        if not force and _up_to_date(issue_dir(out, path), hashes[path]):
            report.unchanged.append(path)
        else:
            todo.append(path)

    renderer = Renderer(config, workspace.templates_dir, workspace.display)
    rendered = render_all(catalog, renderer, todo, report.problems, on_progress)
    if report.problems.has_errors:
        report.stages = renderer.timings.stages
        return report
    if paths:
        # the archive and the feeds list every ready issue of the workspace: build the ones
        # they need that are missing or stale
        rendered += _archive_needs(workspace, catalog, renderer, files, out, inputs, hashes, report)
    report.stages = renderer.timings.stages

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
            articles=[r.to_json() for r in attribution.records(issue)],
        )
        contents = {name: text.encode() for name, text in result.files.items()}
        contents["manifest.json"] = manifest.to_bytes()
        for name, data in sorted(contents.items()):
            if write_if_changed(folder / name, data):
                report.written.append(folder / name)
        report.built.append(issue.path)

    every = workspace.issue_files() if paths else files
    manifests = [m for p in every if (d := issue_dir(out, p)) and (m := Manifest.read(d))]
    ready = [m for m in manifests if m.status == "ready"]
    report.written += write_archive(out, config, renderer.env, ready, _feed_fallback(workspace))
    return report


def _archive_needs(
    workspace: Workspace,
    catalog: Catalog,
    renderer: Renderer,
    files: list[Path],
    out: Path,
    inputs: InputHashes,
    hashes: dict[Path, str],
    report: BuildReport,
) -> list[RenderedIssue]:
    """The ready issues outside `files` whose build is missing or stale, rendered. One that
    does not render is left out of the archive with a warning: building or sending another
    issue does not fail because of it (`check` and its own build report its errors)."""
    needed = []
    given = {p.resolve() for p in files}
    for path in workspace.issue_files():
        if path.resolve() in given:
            continue
        hashes[path] = inputs.of(path, catalog.sources_of(path))
        if _up_to_date(issue_dir(out, path), hashes[path]):
            continue
        issue, _ = catalog.load(path)
        if issue is None or issue.status == "ready":  # None: it does not load, said below
            needed.append(path)
    found = Problems()
    rendered = render_all(catalog, renderer, needed, found)
    failed = {p.path for p in found.errors}
    for path in needed:
        if workspace.display(path) in failed:
            report.problems.warning(
                workspace.display(path),
                None,
                "left out of the archive and feeds: it does not build (see `newsletter check`)",
            )
    return [
        r
        for r in rendered
        if r.issue.status == "ready" and workspace.display(r.issue.path) not in failed
    ]


def _feed_fallback(workspace: Workspace) -> dt.datetime:
    """The date of a feed with no issue yet: SOURCE_DATE_EPOCH, else the config file's
    modification time; never the clock, so that two builds give the same bytes."""
    epoch = Environment().source_date_epoch()
    if epoch is None:
        epoch = int(workspace.config_path.stat().st_mtime)
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


# preview


@dataclass(frozen=True)
class Rendering:
    """One issue as `newsletter preview` shows it, or the problems that stop it rendering."""

    path: Path
    subject: str = ""
    emails: dict[str, str] = field(default_factory=dict)  # "free.html", "premium.txt"…
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def sample_values(workspace: Workspace) -> dict[str, str]:
    root = workspace.config.publication.root_url
    return {
        "email": "alex.reader@example.com",
        "name": "Alex Reader",
        "unsubscribe_url": f"{root}/unsubscribe/preview",
        "preferences_url": f"{root}/preferences/preview",
    }


def newest_issue(workspace: Workspace) -> Path:
    """The issue file edited last: what an editor running `preview` is working on."""
    files = workspace.issue_files()
    if not files:
        raise NewsletterError(f"no issue files under {workspace.display(workspace.issues_dir)}")
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


def render_preview(root: Path, path: Path) -> Rendering:
    """A fresh workspace each time: the config and templates may have changed since."""
    workspace = Workspace(root)
    try:
        config = workspace.config
    except ConfigError as exc:
        return Rendering(path, problems=list(config_problems(exc)))
    if not path.is_file():
        return Rendering(path, problems=[Problem(str(path), None, "error", "no such issue file")])
    problems = Problems()
    renderer = Renderer(config, workspace.templates_dir, workspace.display)
    rendered = render_all(Catalog(workspace), renderer, [path], problems)
    if not rendered or problems.has_errors:
        return Rendering(path, problems=list(problems))
    (result,) = rendered
    values = sample_values(workspace)
    emails = {
        name: placeholders.fill(text, values, for_html=name.endswith(".html"))
        for name, text in result.files.items()
        if name in PREVIEWED
    }
    return Rendering(path, result.issue.subject, emails, list(problems))


def issue_path(workspace: Workspace, ref: str | None) -> Path:
    """ISSUE as a file or <newsletter>/<date>; the newest issue file without one."""
    if ref is None:
        return newest_issue(workspace)
    return workspace.resolve_issue(ref).resolve()
