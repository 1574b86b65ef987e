"""`newsletter init` and `newsletter new`: start a workspace, start an issue; never overwrite."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from newsletter.audience.tokens import create_secret_file
from newsletter.errors import WorkspaceError
from newsletter.workspace import Workspace

SKELETON = Path(__file__).parent.parent / "skeleton"


def init(target: Path, today: dt.date | None = None) -> list[Path]:
    """Copy the skeleton workspace into `target`; refuse if a workspace is already there."""
    if (target / "newsletter.toml").exists():
        raise WorkspaceError("a workspace is already here (newsletter.toml exists)", target)
    if target.exists() and not target.is_dir():
        raise WorkspaceError("exists and is not a folder", target)
    today = today or dt.date.today()
    created = []
    for source in sorted(SKELETON.rglob("*")):
        if source.is_dir() or source.suffix == ".pyc":
            continue
        relative = source.relative_to(SKELETON)
        name = (
            str(relative).replace("gitignore", ".gitignore").replace("EXAMPLE", today.isoformat())
        )
        dest = target / name
        if dest.exists():
            raise WorkspaceError("already exists; not overwriting it", dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".md" and "issues" in relative.parts:
            dest.write_text(
                source.read_text(encoding="utf-8").replace("EXAMPLE", today.isoformat())
            )
        else:
            shutil.copyfile(source, dest)
        created.append(dest)
    secret = create_secret_file(target)
    if secret is not None:
        created.append(secret)
    return created


def new_issue(workspace: Workspace, newsletter: str, date: dt.date | None = None) -> Path:
    """Start the issue file of `newsletter` for `date` (default: today where it is published)."""
    config = workspace.config
    config.check_newsletter(newsletter)
    date = date or dt.datetime.now(ZoneInfo(config.publication.timezone)).date()
    path = workspace.issue_path(newsletter, date)
    env = Environment(
        loader=FileSystemLoader(SKELETON.parent / "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text = env.get_template("new_issue.md.j2").render(
        newsletter=newsletter,
        date=date.isoformat(),
        collects=config.newsletters[newsletter].collect is not None,
        title=config.newsletters[newsletter].title,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise WorkspaceError(
            "already exists; not overwriting it", workspace.display(path)
        ) from None
    return path
