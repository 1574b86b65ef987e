"""The `newsletter` command: a thin layer over the library.

Each command finds the workspace, calls one core function and prints its report. Core
modules are imported inside the commands so that `newsletter --help` starts fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from newsletter import __version__

if TYPE_CHECKING:
    from newsletter.problems import Problems
    from newsletter.workspace import Workspace


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A NewsletterError becomes `Error: …` on stderr and exit status 1, never a traceback."""
    from newsletter.config import ConfigProblems
    from newsletter.errors import NewsletterError

    try:
        yield
    except ConfigProblems as exc:
        for problem in exc.problems:
            click.echo(problem.format(), err=True)
        _fail(f"{len(exc.problems)} problem(s) in newsletter.toml")
    except NewsletterError as exc:
        _fail(str(exc))
    except OSError as exc:  # a folder we cannot write, a disk that is full…
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")


def _workspace(ctx: click.Context) -> Workspace:
    from newsletter.workspace import Workspace

    root: Path | None = ctx.obj.get("root")
    return Workspace(root.resolve()) if root else Workspace.find()


def _print_problems(problems: Problems) -> None:
    for problem in problems.sorted():
        click.echo(problem.format(), err=problem.severity == "error")


def _summary(problems: Problems) -> str:
    e, w = len(problems.errors), len(problems.warnings)
    return f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-w",
    "--workspace",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    help="The publication's folder (default: the nearest one holding newsletter.toml).",
)
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Write, build and send a publication's email newsletters."""
    ctx.ensure_object(dict)
    ctx.obj["root"] = root


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Start a new publication's workspace in DIRECTORY."""
    from newsletter.scaffold import init as do_init

    with _user_errors():
        created = do_init(directory)
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"Next: cd {directory} && newsletter build")


def _parse_date(_ctx: Any, _param: Any, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date like 2025-05-14") from None


@cli.command()
@click.argument("newsletter")
@click.option("--date", callback=_parse_date, help="The issue's date, YYYY-MM-DD (default: today).")
@click.pass_context
def new(ctx: click.Context, newsletter: str, date: dt.date | None) -> None:
    """Start the issue file of NEWSLETTER for a date, from a skeleton."""
    from newsletter.scaffold import new_issue

    with _user_errors():
        ws = _workspace(ctx)
        path = new_issue(ws, newsletter, date)
    click.echo(f"created {ws.display(path)}")


_paths = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


@cli.command()
@_paths
@click.option(
    "--links", is_flag=True, help="Also check that every link answers (uses the network)."
)
@click.pass_context
def check(ctx: click.Context, paths: tuple[Path, ...], links: bool) -> None:
    """Report every problem in the issue files (all of them, or PATHS)."""
    from newsletter.check import check as do_check

    with _user_errors():
        problems = do_check(_workspace(ctx), list(paths), links=links)
    _print_problems(problems)
    click.echo(_summary(problems), err=True)
    sys.exit(1 if problems.has_errors else 0)


@cli.command()
@_paths
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: build/).",
)
@click.option("--force", is_flag=True, help="Render every issue, even unchanged ones.")
@click.pass_context
def build(ctx: click.Context, paths: tuple[Path, ...], out: Path | None, force: bool) -> None:
    """Render the issues (all of them, or PATHS) into emails, web pages and feeds."""
    from newsletter.build import build as do_build

    with _user_errors():
        ws = _workspace(ctx)
        with _progress(len(ws.issue_files(list(paths)))) as advance:
            report = do_build(ws, list(paths), out, force=force, on_progress=advance)
    _print_problems(report.problems)
    if not report.ok:
        _fail(f"{_summary(report.problems)}; nothing was written")
    out_dir = ws.display(report.out)
    click.echo(
        f"Built {len(report.built)} issue(s), {len(report.unchanged)} unchanged, "
        f"{len(report.written)} file(s) written, {_summary(report.problems)}."
    )
    click.echo(f"Output: {out_dir}/ (open {out_dir}/index.html)")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[Any], None]]:
    """click's progress bar on a terminal when there is much to do; silent otherwise."""
    if total < 20 or not sys.stderr.isatty():
        yield lambda _item: None
        return
    with click.progressbar(length=total, label="Building", file=sys.stderr) as bar:
        yield lambda _item: bar.update(1)
