"""The `newsletter` command: a thin layer over the library.

Each command finds the workspace, calls one core function and prints its report. Core
modules are imported inside the commands so that `newsletter --help` starts fast.
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from newsletter import __version__

if TYPE_CHECKING:
    from newsletter.problems import Problems
    from newsletter.send.stats import IssueStats
    from newsletter.workspace import Workspace


def _shown(text: str) -> str:
    """Text for a person: every configured secret masked (`Environment.mask`)."""
    from newsletter.config import Environment

    return Environment().mask(text)


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {_shown(message)}", err=True)
    sys.exit(1)


@contextmanager
def _user_errors() -> Iterator[None]:
    """A NewsletterError becomes `Error: …` on stderr and exit status 1, never a traceback;
    so does any other exception (a bug), named by its type. Either way secrets are masked."""
    from newsletter.errors import ConfigProblems, NewsletterError

    try:
        yield
    except ConfigProblems as exc:
        for problem in exc.problems:
            click.echo(_shown(problem.format()), err=True)
        _fail(f"{len(exc.problems)} problem(s) in newsletter.toml")
    except NewsletterError as exc:
        _fail(str(exc))
    except OSError as exc:  # a folder we cannot write, a disk that is full…
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
        raise
    except Exception as exc:  # a bug: its text may quote a secret (an HTTP header, a URL)
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug: please report it)")


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


def main() -> None:
    """The `newsletter` command as a process of its own (the console script, `python -m`).

    What a command's imports and work leave (modules, classes, compiled templates, the
    config) lives until the process ends, and the interpreter's last act is a full pass of
    the cyclic garbage collector over all of it, which finds nothing worth the time: the
    memory goes back to the system with the process. So the objects are taken out of the
    collector's view first (`gc.freeze`): 4 % of the instructions of a fresh `build` (#16).
    Objects are still freed as their last reference goes, as always; in-process callers
    (tests, `CliRunner`) call `cli` and keep the collector as it is."""
    try:
        cli()
    finally:
        gc.freeze()


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Start a new publication's workspace in DIRECTORY."""
    from newsletter.build.scaffold import init as do_init

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
    from newsletter.build.scaffold import new_issue

    with _user_errors():
        ws = _workspace(ctx)
        path = new_issue(ws, newsletter, date)
    click.echo(f"created {ws.display(path)}")


# -- drafting from the feed (#17) ---------------------------------------------------------


@cli.command()
@click.argument("newsletter")
@click.option("--date", callback=_parse_date, help="The issue's date, YYYY-MM-DD (default: today).")
@click.option("--from", "source", metavar="URL_OR_FILE", help="The feed (default: the config's).")
@click.option(
    "--since",
    type=click.FloatRange(min=0, min_open=True),
    metavar="HOURS",
    help="Stories of the last HOURS (default: since the previous issue).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most N stories.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to fetch.")
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
@click.pass_context
def draft(
    ctx: click.Context,
    newsletter: str,
    date: dt.date | None,
    source: str | None,
    since: float | None,
    limit: int | None,
    timeout: float | None,
    dry_run: bool,
) -> None:
    """Draft the issue of NEWSLETTER from the site's feed (never overwrites a file)."""
    from newsletter.build.draft import draft as do_draft

    with _user_errors():
        ws = _workspace(ctx)
        report = do_draft(
            ws, newsletter, date, source, since, limit, dry_run=dry_run, timeout=timeout
        )
    if dry_run:
        click.echo(report.text, nl=False)
    for title, url in report.taken:
        click.echo(f"took {title} ({url})", err=dry_run)
    for which, why in report.left_out:
        click.echo(f"left out {which}: {why}", err=dry_run)
    if report.written:
        click.echo(
            f"created {ws.display(report.path)}: {len(report.taken)} stories, "
            f"{len(report.left_out)} left out (a draft: review it, then set 'status: ready')"
        )


_paths = click.argument("paths", nargs=-1, type=click.Path(path_type=Path))


@cli.command()
@_paths
@click.option(
    "--links", is_flag=True, help="Also check that every link answers (uses the network)."
)
@click.pass_context
def check(ctx: click.Context, paths: tuple[Path, ...], links: bool) -> None:
    """Report every problem in the issue files (all of them, or PATHS)."""
    from newsletter.build.pipeline import check as do_check

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
    from newsletter.build.pipeline import build as do_build

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


# -- subscribers -------------------------------------------------------------------------


@cli.group()
def subscribers() -> None:
    """Keep the subscriber lists: import, add, remove, forget, list, export, stats, sync."""


@contextmanager
def _store(ctx: click.Context, *, for_send: bool = False) -> Iterator[tuple[Workspace, Any]]:
    from newsletter.store import CACHE_KIB, SEND_CACHE_KIB, open_store

    ws = _workspace(ctx)
    cache = SEND_CACHE_KIB if for_send else CACHE_KIB
    store = open_store(ws.database_url, setting=ws.database_setting, cache_kib=cache)
    try:
        yield ws, store
    finally:
        store.close()


_tier = click.option(
    "--tier", type=click.Choice(["free", "premium"]), help="The subscribers' tier."
)
PARTIAL = 3  # exit status of an import that saved the good rows and rejected some


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--newsletter", help="The newsletter to subscribe them to (unless the file names it)."
)
@_tier
@click.option("--dry-run", is_flag=True, help="Report what would happen; save nothing.")
@click.option("--resubscribe", is_flag=True, help="Resubscribe people who had unsubscribed.")
@click.option("--check-deliverability", is_flag=True, help="Also look up each domain (DNS).")
@click.option(
    "--rejects", type=click.Path(dir_okay=False, path_type=Path), help="Write rejected rows here."
)
@click.pass_context
def import_(
    ctx: click.Context,
    file: Path,
    newsletter: str | None,
    tier: str | None,
    dry_run: bool,
    resubscribe: bool,
    check_deliverability: bool,
    rejects: Path | None,
) -> None:
    """Import subscribers from a CSV file (ours, Mailchimp, Substack or listmonk)."""
    from newsletter.audience.importer import Importer

    with _user_errors(), _store(ctx) as (ws, store):
        ws.config.check_newsletter(newsletter)
        importer = Importer(
            store,
            set(ws.config.newsletters),
            newsletter=newsletter,
            tier=tier,
            resubscribe=resubscribe,
            check_deliverability=check_deliverability,
        )
        size = file.stat().st_size if file.is_file() else 0
        with _bytes_progress(size, "Importing") as progress:
            report = importer.run(file, dry_run=dry_run, rejects=rejects, on_progress=progress)
    shown = ws.display(file)
    for row in report.rejected[:50]:
        click.echo(
            f"{shown}:{row.line}: rejected {row.email or '(no email)'}: {row.reason}", err=True
        )
    if len(report.rejected) > 50:
        click.echo(f"… and {len(report.rejected) - 50} more rejected rows", err=True)
    for row in report.skipped_rows[:20]:
        click.echo(f"{shown}:{row.line}: skipped {row.email}: {row.reason}", err=True)
    if len(report.skipped_rows) > 20:
        click.echo(f"… and {len(report.skipped_rows) - 20} more skipped rows", err=True)
    click.echo(report.summary())
    if report.rejected:
        sys.exit(PARTIAL)


@contextmanager
def _bytes_progress(size: int, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar for big files (a few thousand rows and more), on a terminal only."""
    if size < 200_000 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        last = 0

        def advance(done: int, _total: int) -> None:
            nonlocal last
            bar.update(done - last)
            last = done

        yield advance


@subscribers.command()
@click.argument("email")
@click.option("--newsletter", required=True, help="The newsletter to subscribe them to.")
@click.option("--name", help="Their name.")
@_tier
@click.pass_context
def add(
    ctx: click.Context, email: str, newsletter: str, name: str | None, tier: str | None
) -> None:
    """Subscribe one address to a newsletter."""
    from newsletter.audience.subscribers import add as do_add

    with _user_errors(), _store(ctx) as (ws, store):
        ws.config.check_newsletter(newsletter)
        result = do_add(store, email, newsletter, name=name, tier=tier)
    click.echo(f"{email}: {result} ({newsletter})")


@subscribers.command()
@click.argument("email")
@click.option("--newsletter", help="Only this newsletter (default: all of them).")
@click.pass_context
def remove(ctx: click.Context, email: str, newsletter: str | None) -> None:
    """Unsubscribe an address (the record and its history are kept)."""
    from newsletter.audience.subscribers import remove as do_remove

    with _user_errors(), _store(ctx) as (ws, store):
        ws.config.check_newsletter(newsletter)
        keys = do_remove(store, email, newsletter)
    click.echo(
        f"{email}: unsubscribed from {', '.join(keys)}"
        if keys
        else f"{email}: already unsubscribed"
    )


@subscribers.command()
@click.argument("email")
@click.pass_context
def forget(ctx: click.Context, email: str) -> None:
    """Erase an address: personal data and its outbox files deleted, kept suppressed by its
    hash."""
    from newsletter.audience.subscribers import forget as do_forget

    with _user_errors(), _store(ctx) as (ws, store):
        done = do_forget(store, email, outbox=ws.outbox_dir)
    what = "personal data deleted" if done.deleted else "no record held"
    if done.outbox_files:
        files = f"{done.outbox_files} outbox file{'s' if done.outbox_files != 1 else ''}"
        what += f" and {files}" if done.deleted else f"; {files} deleted"
    click.echo(f"{email}: {what}; the address stays on the suppression list")


@subscribers.command("list")
@click.option("--newsletter", help="Only subscribers of this newsletter.")
@click.option(
    "--status", type=click.Choice(["subscribed", "pending", "unsubscribed", "suppressed"])
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def list_(ctx: click.Context, newsletter: str | None, status: str | None, as_json: bool) -> None:
    """List subscribers with their newsletters and statuses."""
    import json

    from newsletter.audience.subscribers import listing

    with _user_errors(), _store(ctx) as (ws, store):
        ws.config.check_newsletter(newsletter)
        entries = list(listing(store, newsletter, status))
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False))
        return
    for e in entries:
        states = ", ".join(f"{k}:{v}" for k, v in sorted(e.newsletters.items())) or "-"
        flag = f"  SUPPRESSED ({e.suppressed})" if e.suppressed else ""
        click.echo(f"{e.email}\t{e.name or '-'}\t{e.tier}\t{states}{flag}")
    click.echo(f"{len(entries)} subscriber(s)", err=True)


@subscribers.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export(ctx: click.Context, file: Path) -> None:
    """Export every subscriber and status to a CSV that imports back the same."""
    from newsletter.audience.subscribers import export as do_export

    with _user_errors(), _store(ctx) as (ws, store):
        count = do_export(store, file)
    click.echo(f"{count} row(s) written to {ws.display(file)}")


@subscribers.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts per newsletter and tier: subscribed, pending, unsubscribed, suppressed."""
    import dataclasses
    import json

    from newsletter.audience.subscribers import stats as do_stats

    with _user_errors(), _store(ctx) as (_ws, store):
        rows = do_stats(store)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return
    line = "{:<16}{:<10}{:>12}{:>10}{:>14}{:>12}".format
    click.echo(line("newsletter", "tier", "subscribed", "pending", "unsubscribed", "suppressed"))
    for r in rows:
        counts = (r.subscribed, r.pending, r.unsubscribed, r.suppressed)
        click.echo(line(r.newsletter, r.tier, *counts))


@subscribers.command("sync")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tier-column", required=True, help="The column holding the plan or status.")
@click.option(
    "--premium-values",
    default="premium",
    show_default=True,
    help="Comma-separated values of that column that mean premium (any case); others: free.",
)
@click.option(
    "--demote-missing",
    is_flag=True,
    help="The file is complete: premium subscribers not in it become free.",
)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@click.pass_context
def sync(
    ctx: click.Context,
    file: Path,
    tier_column: str,
    premium_values: str,
    demote_missing: bool,
    dry_run: bool,
) -> None:
    """Set subscribers' tiers from the paywall's export (email plus a plan column)."""
    from newsletter.audience.sync import sync as do_sync

    with _user_errors(), _store(ctx) as (ws, store):
        report = do_sync(
            store,
            file,
            tier_column=tier_column,
            premium_values=premium_values.split(","),
            demote_missing=demote_missing,
            dry_run=dry_run,
        )
    shown = ws.display(file)
    if dry_run:
        kinds = [
            ("promote", report.promoted),
            ("demote", report.demoted),
            ("not a subscriber", report.unknown),
            ("keep premium (not in the file)", report.missing),
        ]
        for label, changes in kinds:
            for change in changes[:10]:
                where = f"{shown}:{change.line}: " if change.line else ""
                click.echo(f"{where}{label}: {change.email}")
            if len(changes) > 10:
                click.echo(f"… and {len(changes) - 10} more ({label})")
        click.echo(f"dry run, nothing changed: {report.summary()}")
        return
    click.echo(f"{shown}: {report.summary()}")


# -- the publisher's systems: API keys (#13) ------------------------------------------------


@cli.group("api-key")
def api_key() -> None:
    """Keys for the HTTP API (/api/v1/): create, list, revoke."""


@api_key.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="What the key may do (repeat): subscribers:read, subscribers:write, "
    "subscribers:confirm, stats:read.",
)
@click.pass_context
def api_key_create(ctx: click.Context, name: str, scopes: tuple[str, ...]) -> None:
    """Make a key and print it, once: only its hash is stored."""
    from newsletter.audience import apikeys

    with _user_errors(), _store(ctx) as (_ws, store):
        made, key = apikeys.create(store, name, list(scopes), now=dt.datetime.now(dt.UTC))
    click.echo(key)
    shown = " ".join(sorted(made.scopes))
    click.echo(f"API key {made.name} ({shown}): copy it now, it is never shown again", err=True)


@api_key.command("list")
@click.pass_context
def api_key_list(ctx: click.Context) -> None:
    """Every key's name, scopes, creation and last use (never the key)."""
    from newsletter.audience import apikeys

    with _user_errors(), _store(ctx) as (_ws, store):
        keys = apikeys.listing(store)
    if not keys:
        click.echo("no API keys: `newsletter api-key create NAME --scope …` makes one")
        return
    line = "{:<29}{:<10}{:<22}{:<22}{}".format
    click.echo(line("name", "starts", "created", "last used", "scopes"))
    for k in keys:
        used = k.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if k.last_used_at else "never"
        shown = " ".join(sorted(k.scopes)) + (" (revoked)" if k.revoked_at else "")
        click.echo(
            line(k.name, k.prefix + "…", k.created_at.strftime("%Y-%m-%d %H:%M UTC"), used, shown)
        )


@api_key.command("revoke")
@click.argument("name")
@click.pass_context
def api_key_revoke(ctx: click.Context, name: str) -> None:
    """Revoke a key: refused from the next request on, by every running service."""
    from newsletter.audience import apikeys

    with _user_errors(), _store(ctx) as (_ws, store):
        apikeys.revoke(store, name, now=dt.datetime.now(dt.UTC))
    click.echo(f"API key {name} revoked")


# -- sending ------------------------------------------------------------------------------


@cli.command()
@click.pass_context
def secret(ctx: click.Context) -> None:
    """Create the workspace's .secrets file (the key that signs unsubscribe links)."""
    from newsletter.audience.tokens import create_secret_file

    with _user_errors():
        ws = _workspace(ctx)
        path = create_secret_file(ws.root)
    if path is None:
        click.echo(f"{ws.display(ws.root / '.secrets')} exists already; left as it is")
    else:
        click.echo(
            f"created {ws.display(path)} (keep it out of git, and keep a copy: "
            "the links signed with it stop working without it)"
        )


# -- deliverability: DKIM keys and `doctor` (#14) ---------------------------------------------


@cli.group()
def dkim() -> None:
    """DKIM signing keys for the SMTP and outbox backends."""


@dkim.command()
@click.option("--selector", required=True, help="The key's name in DNS (s=), like news2026.")
@click.option("--domain", help="The signing domain (default: [dkim] domain, else the From's).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The key file to write (default: dkim-SELECTOR.pem in the workspace); never overwritten.",
)
@click.pass_context
def keygen(ctx: click.Context, selector: str, domain: str | None, out: Path | None) -> None:
    """Write a new 2048-bit RSA key (mode 600) and print the DNS TXT record to publish."""
    from email.utils import parseaddr

    from pydantic import ValidationError

    from newsletter.config import DKIM_KEY_FILE_ENV, DkimSettings
    from newsletter.send.dkim import keygen as make_key

    with _user_errors():
        ws = _workspace(ctx)
        config = ws.config
        if domain is None:
            if config.dkim is not None:
                domain = config.dkim.domain
            else:
                sender = next(iter(config.newsletters.values())).sender
                domain = parseaddr(sender)[1].rsplit("@", 1)[1]
        try:
            settings = DkimSettings(domain=domain, selector=selector)
        except ValidationError as exc:
            _fail(str(exc.errors()[0].get("ctx", {}).get("error", exc)))
        path = out if out is not None else ws.root / f"dkim-{settings.selector}.pem"
        key = make_key(path, settings.selector, settings.domain)
    click.echo(f"wrote a new 2048-bit key to {ws.display(key.path)} (mode 600; keep it out of git)")
    click.echo("")
    click.echo(f"Publish this DNS TXT record at {key.name}:")
    click.echo("")
    click.echo(f"  {key.zone_line}")
    click.echo("")
    click.echo("Then sign with it:")
    click.echo(f"  export {DKIM_KEY_FILE_ENV}={key.path.resolve()}")
    click.echo(
        f'  newsletter.toml: [dkim] domain = "{settings.domain}", selector = "{settings.selector}"'
    )


@cli.command()
@click.option(
    "--backend",
    type=click.Choice(["smtp", "sendgrid"]),
    default="smtp",
    show_default=True,
    help="The way the mail leaves: SPF and DKIM are checked for it.",
)
@click.option("--nameserver", help="Ask this DNS server (HOST or HOST:PORT), not the system's.")
@click.pass_context
def doctor(ctx: click.Context, backend: str, nameserver: str | None) -> None:
    """Check in DNS that mailbox providers will trust what you send (SPF, DKIM, DMARC…)."""
    from newsletter.send.doctor import diagnose, resolver_lookup

    with _user_errors():
        ws = _workspace(ctx)
        checks = diagnose(ws.config, resolver_lookup(nameserver), backend)  # type: ignore[arg-type]
    for check in checks:
        click.echo(check.line())
    failed = sum(not c.ok for c in checks)
    if failed:
        click.echo(f"{failed} of {len(checks)} checks failed", err=True)
        ctx.exit(1)


@contextmanager
def _send_progress(total: int) -> Iterator[Callable[[int, int], None] | None]:
    """On a terminal: a bar with the rate and the time left."""
    if total < 200 or not sys.stderr.isatty():
        yield None
        return
    import time

    started = time.monotonic()

    def rate(done: int | None) -> str | None:
        return f"{done / max(time.monotonic() - started, 1e-3):,.0f}/s" if done else None

    with click.progressbar(
        length=total, label="Sending", file=sys.stderr, show_eta=True, item_show_func=rate
    ) as bar:
        last = 0

        def advance(done: int, _total: int) -> None:
            nonlocal last
            bar.update(done - last, current_item=done)
            last = done

        yield advance


def _parse_at(_ctx: Any, _param: Any, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date and time like 2025-05-14T07:00"
        ) from None


@cli.command()
@click.argument("issue", required=False)
@click.option(
    "--due", is_flag=True, help="Send every ready issue whose scheduled time has come (cron)."
)
@click.option(
    "--backend",
    type=click.Choice(["outbox", "smtp", "sendgrid"]),
    default="outbox",
    show_default=True,
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the recipients per tier and show one message; send nothing.",
)
@click.option(
    "--test",
    "test",
    multiple=True,
    metavar="ADDR",
    help="Send only to ADDR (repeatable), subject marked [TEST].",
)
@click.option(
    "--test-tier", type=click.Choice(["free", "premium"]), default="premium", show_default=True
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Send at most N messages now; resume later."
)
@click.option(
    "--at", callback=_parse_at, help="Schedule (SendGrid only), in the newsletter's time zone."
)
@click.option("--late", is_flag=True, help="Send even though the issue's send window has closed.")
@click.option(
    "--resend-unknown", is_flag=True, help="Send again the messages whose outcome is unknown."
)
@click.option(
    "--retry-failed", is_flag=True, help="Send to the recipients an earlier run failed to reach."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def send(
    ctx: click.Context,
    issue: str | None,
    due: bool,
    backend: str,
    dry_run: bool,
    test: tuple[str, ...],
    test_tier: str,
    limit: int | None,
    at: dt.datetime | None,
    late: bool,
    resend_unknown: bool,
    retry_failed: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Send ISSUE (a file, or <newsletter>/<date>) to its subscribers, exactly once; or,
    with --due, every ready issue whose scheduled time has come.

    Exit status 3 while any recipient's message failed or has an unknown outcome."""
    import json

    if due:
        if issue or test or dry_run or at or limit or late:
            _fail(
                "--due sends the scheduled issues: give no ISSUE, --test, --dry-run, --at, "
                "--limit or --late"
            )
        _send_due(ctx, backend, yes, resend_unknown, retry_failed, as_json)
        return
    if issue is None:
        _fail("name the ISSUE to send (a file, or <newsletter>/<date>), or use --due")

    from newsletter.model import Tier
    from newsletter.send import SendOptions, plan_send, run_send, sample

    options = SendOptions(
        backend=backend,
        test=list(test),
        test_tier=Tier(test_tier),
        limit=limit,
        late=late,
        at=at,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        dry_run=dry_run,
    )
    with _user_errors(), _store(ctx, for_send=True) as (ws, store):
        plan = plan_send(ws, store, issue, options)
        nl = ws.config.newsletters[plan.content.newsletter]
        if dry_run:
            message = sample(plan)
            tiers = ", ".join(f"{n} {t}" for t, n in sorted(plan.by_tier.items())) or "none"
            click.echo(
                f"{plan.issue_key}: {plan.recipients} recipient(s) ({tiers}); dry run: nothing sent"
            )
            head = message.data.partition(b"\r\n\r\n")[0]
            click.echo(head.decode("utf-8", "replace").replace("\r\n", "\n"))
            click.echo("")
            click.echo(plan.content.text[Tier(next(iter(plan.by_tier), "free"))][:2000])
            return
        if plan.resuming and plan.recipients == 0:
            click.echo(
                f"{plan.issue_key} was sent already: {plan.already_sent} sent"
                + (f", {plan.failed} failed ({RETRY_HINT})" if plan.failed else "")
                + (
                    f", {plan.unknown} unknown (--resend-unknown to send them again)"
                    if plan.unknown
                    else ""
                )
                + "; nothing to send"
            )
            _print_reasons(plan.failure_reasons)
            if plan.failed or plan.unknown:
                sys.exit(PARTIAL)
            return
        real = backend != "outbox" and not test
        if real and not yes:
            if not sys.stdin.isatty():
                _fail("sending to a real list needs confirmation: run on a terminal, or add --yes")
            question = (
                f"Send {nl.title} '{plan.content.subject}' to {plan.recipients} recipient(s)"
                f" through {backend}?"
            )
            if not click.confirm(question):
                _fail("not sent")
        # what is loaded now (modules, the issue, the plan) lives as long as the process:
        # out of the collector's way, which a million recipients' dicts would make it
        # walk again and again (#16)
        gc.freeze()
        with _send_progress(plan.recipients) as progress:
            report = run_send(plan, store, on_progress=progress)
    if as_json:
        click.echo(_shown(json.dumps(report.to_json(), indent=2)))
    else:
        for email, error in report.failures[:50]:
            click.echo(f"failed {email}: {_shown(error)}", err=True)
        for email in report.unknowns[:50]:
            click.echo(
                f"unknown {email}: the outcome is unknown (--resend-unknown to send again)",
                err=True,
            )
        click.echo(
            f"{report.issue} via {report.backend}: {report.sent} sent, {report.failed} failed, "
            f"{report.skipped} skipped, {report.already_sent} already sent, "
            f"{report.unknown} unknown in {report.seconds:.1f} s ({report.rate:.0f}/s)"
        )
        if report.failed_total:
            click.echo(f"{report.failed_total} failed, not sent ({RETRY_HINT}):")
            _print_reasons(report.failure_reasons)
    if report.failed_total or report.unknown:
        sys.exit(PARTIAL)


RETRY_HINT = "--retry-failed to send to them again"


# -- scheduled editions (#17) -------------------------------------------------------------


def _clock() -> dt.datetime:
    """The real clock, or NEWSLETTER_NOW (for tests only: see config.Environment.now)."""
    from newsletter.config import Environment

    return Environment().now() or dt.datetime.now(dt.UTC)


def _when(moment: dt.datetime, ws: Workspace) -> str:
    """A scheduled time as the editor reads it: in the publication's timezone, and in UTC."""
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(ws.config.publication.timezone))
    return f"{local:%Y-%m-%d %H:%M %Z} ({moment.astimezone(dt.UTC):%H:%M} UTC)"


def _send_due(
    ctx: click.Context,
    backend: str,
    yes: bool,
    resend_unknown: bool,
    retry_failed: bool,
    as_json: bool,
) -> None:
    import json

    from newsletter.send import SendOptions
    from newsletter.send.schedule import run_due

    if backend != "outbox" and not yes:
        _fail(f"send --due through {backend} runs unattended: add --yes")
    options = SendOptions(backend=backend, resend_unknown=resend_unknown, retry_failed=retry_failed)
    with _user_errors(), _store(ctx, for_send=True) as (ws, store):
        now = _clock()
        report = run_due(ws, store, options, now)
    partial = False
    lines: list[dict[str, object]] = []
    for slot, sent in report.sent + report.scheduled:
        partial = partial or bool(sent.failed_total or sent.unknown)
        scheduled = any(slot is s for s, _ in report.scheduled)
        lines.append(
            {"issue": slot.key, "action": "scheduled" if scheduled else "sent", **sent.to_json()}
        )
        if not as_json:
            what = f"handed to SendGrid to go out at {_when(slot.at, ws)}" if scheduled else "sent"
            click.echo(
                f"{slot.key}: {what}: {sent.sent} sent, {sent.failed} failed, "
                f"{sent.skipped} skipped, {sent.already_sent} already sent, {sent.unknown} unknown"
            )
            for email, error in sent.failures[:50]:
                click.echo(f"failed {email}: {_shown(error)}", err=True)
    for slot in report.already:
        lines.append({"issue": slot.key, "action": "already sent"})
        if not as_json:
            click.echo(f"{slot.key}: sent already (by another run); nothing to send")
    for slot in report.drafts:
        why = {
            "draft": "due but still a draft: set 'status: ready' to send it",
            "invalid": "due but its file has errors: run newsletter check",
            "no issue": f"due but there is no issue file ({ws.display(slot.path)})",
        }[slot.file_status]
        lines.append({"issue": slot.key, "action": "not sent", "reason": why})
        if not as_json:
            click.echo(f"{slot.key}: {why} (scheduled {_when(slot.at, ws)})", err=True)
    for slot in report.missed:
        why = f"missed: its send window closed at {_when(slot.closes, ws)}; not sent"
        if slot.started:
            why += f" (interrupted: newsletter send {slot.key} --late finishes it)"
        lines.append({"issue": slot.key, "action": "missed", "reason": why})
        if not as_json:
            click.echo(f"{slot.key}: {why}", err=True)
    for slot, error in report.failed:
        lines.append({"issue": slot.key, "action": "failed", "reason": _shown(error)})
        if not as_json:
            click.echo(f"{slot.key}: not sent: {_shown(error)}", err=True)
    if as_json:
        click.echo(_shown(json.dumps({"now": now.isoformat(), "issues": lines}, indent=2)))
    elif not (report.sent or report.scheduled):
        from zoneinfo import ZoneInfo

        local = now.astimezone(ZoneInfo(ws.config.publication.timezone))
        click.echo(f"nothing due at {local:%Y-%m-%d %H:%M %Z}: nothing sent")
    if report.failed:
        sys.exit(1)
    if partial:
        sys.exit(PARTIAL)


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(min=0, max=366),
    default=7,
    show_default=True,
    help="How many days ahead to list.",
)
@click.pass_context
def schedule(ctx: click.Context, days: int) -> None:
    """List the coming scheduled sends and their status (draft, ready, sent, missed…)."""
    from newsletter.send.schedule import slots

    with _user_errors(), _store(ctx) as (ws, store):
        now = _clock()
        found = slots(ws, store, now, days=days)
    if not found:
        click.echo("nothing scheduled: set send_time for a newsletter in newsletter.toml")
        return
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(ws.config.publication.timezone)
    drafts = []
    for slot in found:
        status: str = slot.status(now)
        if status == "due":
            status = "due now"
        if status in ("draft", "invalid", "no issue") and now + dt.timedelta(hours=24) >= slot.at:
            drafts.append(slot)
        local = slot.at.astimezone(tz)
        click.echo(
            f"{slot.newsletter:<12} {slot.date}  {local:%a %H:%M %Z}  "
            f"{slot.at.astimezone(dt.UTC):%H:%M} UTC  {status}"
        )
    for slot in drafts:
        what = (
            "no issue file yet" if slot.file_status == "no issue" else f"still {slot.file_status}"
        )
        click.echo(
            f"not ready: {slot.key} goes out at {_when(slot.at, ws)} but is {what}", err=True
        )


def _print_reasons(reasons: list[tuple[str, int]]) -> None:
    """The commonest reasons of the failures, counted."""
    for reason, count in reasons:
        click.echo(f"  {count} failed: {_shown(reason)}")


# -- the service --------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Run the service: unsubscribe, preferences, sign-up, webhook, archive, the API."""
    from newsletter.web import create_app, run

    with _user_errors():
        app = create_app(_workspace(ctx))
    if app.state.webhook_verifier is None:
        click.echo(
            "warning: no SendGrid webhook verification key (SENDGRID_WEBHOOK_VERIFICATION_KEY):"
            " /webhooks/sendgrid refuses every request",
            err=True,
        )
    try:
        run(app, host, port)
    finally:
        app.state.store.close()


@cli.group()
def db() -> None:
    """The database itself (serve never creates one)."""


@db.command("init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the database (or bring an existing one up to this version's schema)."""
    from newsletter.store import shown

    with _user_errors(), _store(ctx) as (ws, _):
        click.echo(f"database ready: {shown(ws.database_url)}")


@cli.group()
def bounces() -> None:
    """Bounces and complaints that come back by mail (the SMTP backend's bounce mailbox)."""


@bounces.command("process")
@click.argument("source")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--keep", is_flag=True, help="Leave processed messages where they are.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def bounces_process(
    ctx: click.Context, source: str, dry_run: bool, keep: bool, as_json: bool
) -> None:
    """Read SOURCE (a Maildir, an mbox file, or imap://USER@HOST/FOLDER) and apply its
    bounces, complaints and auto-replies: hard bounces and complaints suppress the address."""
    import json

    from newsletter.audience import mailboxes
    from newsletter.audience.bounces import Classifier
    from newsletter.audience.delivery import SoftRule
    from newsletter.audience.tokens import MessageIds, VerpSigner, load_secret

    with _user_errors(), _store(ctx) as (ws, store):
        config = ws.config
        bounce_address = config.smtp.bounce_address
        secret = load_secret(ws.root)  # the tokens in VERP addresses and Message-IDs
        verp = VerpSigner(secret) if bounce_address else None
        opened = mailboxes.open_source(source, config.bounces.imap_security)
        report = mailboxes.process(
            store,
            opened,
            Classifier(verp, bounce_address, MessageIds(secret)),
            SoftRule(config.bounces.soft_limit, config.bounces.soft_days),
            dry_run=dry_run,
            keep=keep,
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    r = report
    parts = [
        (r.hard, "hard bounce"),
        (r.soft, "soft bounce"),
        (r.blocked, "blocked"),
        (r.delayed, "delay warning"),
        (r.complaints, "complaint"),
        (r.reports, "other report"),
        (r.autoreplies, "auto-reply ignored"),
        (r.already, "already processed"),
        (len(r.unknown), "not understood"),
    ]
    said = ", ".join(f"{n} {what}" for n, what in parts if n) or "nothing to do"
    prefix = "dry run: " if r.dry_run else ""
    click.echo(f"{prefix}{r.source}: {r.read} message(s): {said}")
    would = "would be " if r.dry_run else ""
    click.echo(f"{r.suppressed} address(es) {would}suppressed; {r.moved} message(s) moved")
    if r.unknown:
        click.echo("Not understood (left in the mailbox):")
        for key, sender, subject in r.unknown:
            click.echo(f"  {key}  {sender or '-'}  {subject or '-'}")


@cli.command("stats")
@click.argument("issue")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.pass_context
def issue_stats_(ctx: click.Context, issue: str, as_json: bool) -> None:
    """What happened to ISSUE (<newsletter>/<date> or its file): sent, delivered, opened…"""
    import json

    from newsletter.send import issue_key
    from newsletter.send.stats import issue_stats

    with _user_errors(), _store(ctx) as (ws, store):
        key = issue_key(ws, issue)
        result = issue_stats(store, key, ws)
        if result is None:
            _fail(f"{key} has not been sent and no event names it")
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    _print_stats(result)


def _print_stats(s: IssueStats) -> None:
    def pct(n: int) -> str:
        return f"{100 * n / s.sent:5.1f} %" if s.sent else ""

    click.echo(f"{s.issue}" + (f" (sent through {s.backend})" if s.backend else ""))
    if s.scheduled_for:
        click.echo(f"Scheduled: handed over ahead, to go out at {s.scheduled_for}")
    rows = [
        ("Recipients", s.recipients, ""),
        ("Sent", s.sent, ""),
        ("Failed", s.failed, ""),
        ("Unknown", s.unknown, ""),
        ("Not yet sent", s.pending, ""),
        ("Delivered", s.delivered, pct(s.delivered)),
        ("Bounced", s.bounced, pct(s.bounced)),
        ("Blocked", s.blocked, pct(s.blocked)),
        ("Dropped", s.dropped, pct(s.dropped)),
        ("Complained", s.complained, pct(s.complained)),
        ("Unsubscribed", s.unsubscribed, pct(s.unsubscribed)),
        ("Opened (people)", s.opens_human, pct(s.opens_human)),
        ("Opened (machines)", s.opens_machine, pct(s.opens_machine)),
        ("Clicked", s.clickers, pct(s.clickers)),
        ("Clicks", s.clicks, ""),
    ]
    for label, value, share in rows:
        click.echo(f"  {label:<20}{value:>10}  {share}".rstrip())
    if s.failed:
        click.echo(f"Failed ({RETRY_HINT}):")
        _print_reasons(s.failure_reasons)
    if s.top_links:
        click.echo("Top links (clicks, people):")
        for link in s.top_links:
            click.echo(f"  {link.clicks:>6} {link.clickers:>6}  {link.url}")
    if s.stories:
        _print_stories(s)
    if s.sent_without_events:
        click.echo(
            f"Reconcile: {s.sent_without_events} sent message(s) with no event from the provider"
            " (is the event webhook registered?)"
        )
    if s.events_without_send:
        click.echo(
            f"Reconcile: {s.events_without_send} event(s) for messages the send journal"
            " does not know"
        )


def _rate(rate: float | None) -> str:
    return f"{100 * rate:.1f} %" if rate is not None else "-"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_stories(s: IssueStats) -> None:
    """Each story in the issue's order: people who clicked, clicks, the rate among delivered,
    and per tier (free readers clicking a paywalled teaser: the conversion signal)."""
    tiers = sorted({t.tier for story in s.stories for t in story.by_tier})
    click.echo("Stories (people who clicked, clicks, rate among delivered; per tier):")
    head = f"  {'#':>2} {'people':>6} {'clicks':>6} {'rate':>7}"
    head += "".join(f" {tier:>16}" for tier in tiers)
    click.echo(f"{head}  story")
    for story in s.stories:
        line = f"  {story.position:>2} {story.clickers:>6} {story.clicks:>6} "
        line += f"{_rate(story.click_rate):>7}"
        by_tier = {t.tier: t for t in story.by_tier}
        for tier in tiers:
            t = by_tier.get(tier)
            line += f" {f'{t.clickers} ({_rate(t.rate)})' if t else '-':>16}"
        mark = " [paywalled]" if story.paywalled else ""
        click.echo(f"{line}  {_cut(story.title, max(20, 98 - len(line) - len(mark)))}{mark}")
    if s.other_links:
        click.echo("Other links (people, clicks):")
        for other in s.other_links:
            click.echo(f"  {other.kind:<18}{other.clickers:>6} {other.clicks:>6}")


# -- reports ------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--newsletter", "newsletter_key", metavar="KEY", help="One newsletter (default: all)."
)
@click.option(
    "--since", metavar="90d|DATE", help="From this date, or this many days ago (default: 90d)."
)
@click.option("--until", metavar="DATE", help="To this date, included (default: today).")
@click.option(
    "--by",
    type=click.Choice(["issue", "week", "month"]),
    default="issue",
    show_default=True,
    help="One row per issue, or per week or month.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report as one self-contained HTML page with charts.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the per-issue (or per-period) rows as CSV.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.pass_context
def report(
    ctx: click.Context,
    newsletter_key: str | None,
    since: str | None,
    until: str | None,
    by: str,
    html_file: Path | None,
    csv_file: Path | None,
    as_json: bool,
) -> None:
    """What readers read over time: sends, list health, stories, readers in common."""
    import json

    from newsletter.reports import exports
    from newsletter.reports.overview import By, build_report, parse_date, parse_since
    from newsletter.reports.tables import lines

    with _user_errors(), _store(ctx) as (ws, store):
        today = dt.datetime.now(dt.UTC).date()
        end = parse_date(until, "--until") if until else None
        start = parse_since(since, end or today) if since else None
        result = build_report(
            store,
            ws,
            newsletter=newsletter_key,
            since=start,
            until=end,
            by=cast(By, by),
            today=today,
        )
        if csv_file is not None:
            exports.write_csv(result, csv_file)
        if html_file is not None:
            from newsletter.reports.document import write_html

            write_html(result, html_file, ws.config.publication.name)
    if as_json:
        click.echo(json.dumps(exports.to_json(result), indent=2, ensure_ascii=False))
        return
    for line in lines(result):
        click.echo(line)
    for path in (csv_file, html_file):
        if path is not None:
            click.echo(f"wrote {ws.display(path.resolve())}")


@cli.command()
@click.argument("issue", required=False)
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def preview(ctx: click.Context, issue: str | None, port: int) -> None:
    """Show ISSUE (default: the issue file edited last) live, reloaded as you edit."""
    from newsletter.build.pipeline import issue_path
    from newsletter.web.preview import create_preview_app, run_preview

    with _user_errors():
        ws = _workspace(ctx)
        path = issue_path(ws, issue)
        if not path.is_file():
            _fail(f"{ws.display(path)}: no such issue file")
        app = create_preview_app(ws, path)
    click.echo(f"Previewing {ws.display(path)} at http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    run_preview(app, port)
