"""The subscriber-facing service (`newsletter serve`): one Starlette app, the only module
tree that imports Starlette. `create_app` is its only constructor."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from newsletter.config import Environment
from newsletter.errors import ApiRefused, BodyTimeout, BodyTooLarge, NewsletterError
from newsletter.workspace import Workspace


def create_app(
    workspace: Workspace,
    store: Any = None,
    *,
    clock: Callable[[], float] = time.time,
    outbox_dir: Any = None,
    body_timeout: float | None = None,
) -> Any:
    """`clock` lets tests move time (token expiry, webhook windows); `outbox_dir` is where the
    outbox backend drops confirmation emails (default: the workspace's outbox/notices);
    `body_timeout` bounds the time a request body may take (default: limits.BODY_TIMEOUT).

    Without a `store`, it opens the workspace's database, and never creates one nor its
    schema: a missing SQLite file or an empty database is a NoDatabase error saying which
    command makes it."""
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect

    from newsletter.audience.tokens import Signer, load_secret
    from newsletter.build.templating import environment
    from newsletter.send.backends import sendgrid_webhook as webhook
    from newsletter.store import open_store, sqlite_file
    from newsletter.store.groupcommit import GroupCommit
    from newsletter.web import guard, limits, webhooks
    from newsletter.web.routes import routes
    from newsletter.web.security import ClientLimiter, FormTokens, SecurityHeaders

    config = workspace.config
    if config.serve.backend == "sendgrid" and Environment().sendgrid_api_key() is None:
        raise NewsletterError(
            "[serve] backend is sendgrid: set SENDGRID_API_KEY for the confirmation emails"
        )
    app = Starlette(
        routes=routes(workspace),
        exception_handlers={
            404: _not_found,
            405: _not_found,
            NewsletterError: _unavailable,
            ApiRefused: _api_refused,
            BodyTooLarge: _too_large,
            BodyTimeout: _too_slow,
            ClientDisconnect: _disconnected,
        },
    )
    redact_logs()
    app.router.redirect_slashes = False  # no endpoint redirects, not even to add a slash
    url = store.url if store is not None else workspace.database_url
    database = sqlite_file(url)
    if database is not None:  # innermost: it sees the endpoint's answer before anyone
        app.add_middleware(guard.DatabaseGuard, path=database, opened=guard.identity(database))
    app.add_middleware(
        limits.BodyLimit,
        default=limits.FORM_MAX_BODY,
        limits={"/webhooks/sendgrid": webhooks.MAX_BODY},
        timeout=limits.BODY_TIMEOUT if body_timeout is None else body_timeout,
        prefixes={API_PREFIX: limits.API_MAX_BODY},
    )
    app.add_middleware(SecurityHeaders)
    app.state.workspace = workspace
    app.state.config = config
    secret = load_secret(workspace.root)
    app.state.signer = Signer(secret, clock)
    app.state.forms = FormTokens(secret, clock)
    app.state.pages = environment(workspace.templates_dir)
    app.state.clock = clock
    app.state.now = lambda: dt.datetime.fromtimestamp(clock(), dt.UTC)
    app.state.outbox_dir = outbox_dir or workspace.outbox_dir / "notices"
    key = webhook.verification_key(config.sendgrid.webhook_verification_key)
    app.state.webhook_verifier = (
        webhook.Verifier(key, config.sendgrid.webhook_max_age, clock) if key else None
    )
    app.state.limiter = ClientLimiter(config.serve.signups_per_client)
    # data and erasure links mailed per subscriber a day (this process's memory)
    app.state.data_limiter = ClientLimiter(config.serve.signups_per_address, window=24 * 3600)
    # last: nothing fails after it; never creates a database nor its schema (NoDatabase)
    app.state.store = store or open_store(
        workspace.database_url, setting=workspace.database_setting, create=False
    )
    app.state.commits = GroupCommit(app.state.store)  # one-click unsubscribes, together
    return app


API_PREFIX = "/api/"


def _api(request: Any) -> bool:
    """The API answers every error in JSON, never with an HTML page."""
    return str(request.url.path).startswith(API_PREFIX)


def _allowed(request: Any) -> str:
    """Every method some route of this path answers (each method has its own route)."""
    path = request.url.path
    methods: set[str] = set()
    for route in request.app.router.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _api_refused(request: Any, exc: Any) -> Any:
    from newsletter.web.api.auth import refusal

    return refusal(exc)


async def _not_found(request: Any, exc: Any) -> Any:
    from newsletter.web.pages import error

    status = getattr(exc, "status_code", 404)
    if _api(request):
        from newsletter.web.api import auth

        if status == 405:
            response = auth.error(405, "method_not_allowed", "this method is not allowed here")
            response.headers["Allow"] = _allowed(request)
            return response
        return auth.error(404, "not_found", "there is no such endpoint")
    message = "There is no such page." if status == 404 else "That is not allowed here."
    return error(request, message, status)


_TOKEN_PATH = re.compile(r"/(unsubscribe|preferences|confirm|data)/[^/?#\s\"']+")


# an API key anywhere (a header echoed in an error, a key pasted into a URL), and whatever
# follows an Authorization header's name (another scheme's credentials), but not a log
# message's own placeholder (its argument is redacted on its own)
_API_KEY = re.compile(r"nlk_[A-Za-z0-9_\-]+")
_AUTHORIZATION = re.compile(
    r"(?i)(['\"]?authorization['\"]?\s*[:=,]\s*['\"]?)(?:(bearer|basic)\s+)?(?!%[sdr])[^\s'\"]+"
)


# what each of the three needs to match at all: one search clears the text of a log
# argument that holds none (most of them: an address, a method, a status), three subs don't
_SUSPECT = re.compile(r"/(?:unsubscribe|preferences|confirm|data)/|nlk_|(?i:authorization)")


def redact(text: str) -> str:
    """A link's path with its token replaced by [token]; an API key, and the value of an
    Authorization header, by [redacted]."""
    if _SUSPECT.search(text) is None:
        return text
    text = _TOKEN_PATH.sub(r"/\1/[token]", text)
    text = _API_KEY.sub("nlk_[redacted]", text)
    return _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2) or ''} [redacted]", text)


class RedactTokens(logging.Filter):
    """No log line shows a link's token (the access log, the service's own lines, uvicorn's
    errors and tracebacks): a token in a log file would let whoever reads it act for that
    subscriber (a data token: download their data, or erase them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def _redacted(arg: object) -> object:
    """A log argument as it was, or as redacted text if its text holds a link token (an
    exception, a URL object…)."""
    if isinstance(arg, int | float) or arg is None:
        return arg
    text = str(arg)
    clean = redact(text)
    return arg if clean == text else clean


LOGGERS = ("newsletter.web", "uvicorn.error", "uvicorn.access")


async def _unavailable(request: Any, exc: Exception) -> Any:
    """A store that is locked or down: a 503 page (SendGrid retries a webhook delivery)."""
    from newsletter.web.pages import error

    logging.getLogger("newsletter.web").error("%s %s: %s", request.method, request.url.path, exc)
    if _api(request):
        from newsletter.web.api import auth

        return auth.error(503, "unavailable", "something went wrong on our side: retry shortly")
    return error(request, "Something went wrong on our side: please try again shortly.", 503)


async def _too_large(request: Any, exc: Exception) -> Any:
    from newsletter.web.pages import error

    if _api(request):
        from newsletter.web.api import auth

        return auth.error(413, "too_large", str(exc))
    return error(request, "That request is too large.", 413)


async def _too_slow(request: Any, exc: Exception) -> Any:
    from newsletter.web.pages import error

    logging.getLogger("newsletter.web").warning("%s %s: %s", request.method, request.url.path, exc)
    if _api(request):
        from newsletter.web.api import auth

        return auth.error(408, "timeout", "the request body took too long")
    return error(request, "That request took too long: please try again.", 408)


async def _disconnected(request: Any, exc: Exception) -> Any:
    """One line, not a traceback: a reader who closes the tab mid-form is no error of ours."""
    from starlette.responses import Response

    logging.getLogger("newsletter.web").warning(
        "%s %s: the client disconnected before its request was complete",
        request.method,
        request.url.path,
    )
    return Response(status_code=400)  # nobody is left to read it


def redact_logs() -> None:
    """Every logger the service writes to redacts link tokens."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def run(app: Any, host: str, port: int) -> None:
    """Serve under uvicorn; X-Forwarded-* is trusted only from a proxy on this machine.
    Idle keep-alive connections close after limits.KEEP_ALIVE_TIMEOUT, and a connection
    whose headers take over limits.HEADER_TIMEOUT closes too."""
    import uvicorn

    from newsletter.web import limits

    redact_logs()
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        http=limits.HeaderTimeoutProtocol,
        timeout_keep_alive=limits.KEEP_ALIVE_TIMEOUT,
    )
