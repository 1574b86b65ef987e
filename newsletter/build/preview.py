"""What `newsletter preview` shows: one issue rendered in memory exactly as `build` would
render it (nothing is written), with sample values in the per-recipient placeholders, or the
problems that stop it from rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from newsletter import placeholders
from newsletter.errors import ConfigError, NewsletterError
from newsletter.problems import Problem
from newsletter.workspace import Workspace


@dataclass(frozen=True)
class Rendering:
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
    from newsletter.build.catalog import Catalog
    from newsletter.build.check import config_problems, render_all
    from newsletter.build.render import Renderer
    from newsletter.problems import Problems

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
        if name in ("free.html", "premium.html", "free.txt", "premium.txt")
    }
    return Rendering(path, result.issue.subject, emails, list(problems))


def issue_path(workspace: Workspace, ref: str | None) -> Path:
    """ISSUE as a file or <newsletter>/<date>; the newest issue file without one."""
    if ref is None:
        return newest_issue(workspace)
    return workspace.resolve_issue(ref).resolve()
