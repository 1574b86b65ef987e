"""The subscriber-facing service (`newsletter serve`): one Starlette app, the only module
tree that imports Starlette. `create_app` is its only constructor."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.workspace import Workspace


def create_app(
    workspace: Workspace,
    store: Any = None,
    *,
    clock: Callable[[], float] = time.time,
    outbox_dir: Any = None,
) -> Any:
    """`clock` lets tests move time (token expiry, webhook windows); `outbox_dir` is where the
    outbox backend drops confirmation emails (default: the workspace's outbox/notices)."""
    from starlette.applications import Starlette

    from newsletter.audience import delivery as events
    from newsletter.audience.tokens import Signer, load_secret
    from newsletter.build.templating import environment
    from newsletter.store import open_store
    from newsletter.web.routes import routes
    from newsletter.web.security import ClientLimiter, SecurityHeaders

    config = workspace.config
    if config.serve.backend == "sendgrid" and not os.environ.get("SENDGRID_API_KEY"):
        raise NewsletterError(
            "[serve] backend is sendgrid: set SENDGRID_API_KEY for the confirmation emails"
        )
    app = Starlette(
        routes=routes(workspace),
        exception_handlers={404: _not_found, 405: _not_found, NewsletterError: _unavailable},
    )
    app.router.redirect_slashes = False  # no endpoint redirects, not even to add a slash
    app.add_middleware(SecurityHeaders)
    app.state.workspace = workspace
    app.state.config = config
    app.state.signer = Signer(load_secret(workspace.root), clock)
    app.state.pages = environment(workspace.templates_dir)
    app.state.clock = clock
    app.state.now = lambda: dt.datetime.fromtimestamp(clock(), dt.UTC)
    app.state.outbox_dir = outbox_dir or workspace.root / "outbox" / "notices"
    key = events.verification_key(config.sendgrid.webhook_verification_key)
    app.state.webhook_verifier = (
        events.Verifier(key, config.sendgrid.webhook_max_age, clock) if key else None
    )
    app.state.limiter = ClientLimiter(config.serve.signups_per_client)
    app.state.store = store or open_store(
        workspace.database_url, setting=workspace.database_setting
    )  # last: nothing fails after it
    return app


async def _not_found(request: Any, exc: Any) -> Any:
    from newsletter.web.pages import error

    status = getattr(exc, "status_code", 404)
    message = "There is no such page." if status == 404 else "That is not allowed here."
    return error(request, message, status)


_TOKEN_PATH = re.compile(r"^/(unsubscribe|preferences|confirm)/[^/?]+")


class RedactTokens(logging.Filter):
    """The access log never shows a link's token: a preferences token in a log file would
    let whoever reads it download that subscriber's data."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = _TOKEN_PATH.sub(r"/\1/[token]", args[2])
            record.args = (*args[:2], path, *args[3:])
        return True


async def _unavailable(request: Any, exc: Exception) -> Any:
    """A store that is locked or down: a 503 page (SendGrid retries a webhook delivery)."""
    from newsletter.web.pages import error

    logging.getLogger("newsletter.web").error("%s %s: %s", request.method, request.url.path, exc)
    return error(request, "Something went wrong on our side: please try again shortly.", 503)


def run(app: Any, host: str, port: int) -> None:
    """Serve under uvicorn; X-Forwarded-* is trusted only from a proxy on this machine."""
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
