"""What every page handler shares: rendering a page, an error page, masking an address,
mailing a notice."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from newsletter.audience.notices import Notice


def mask(email: str) -> str:
    """j***@example.com: enough for a reader to recognise, too little to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def render(
    request: Request,
    name: str,
    status: int = 200,
    background: BackgroundTask | None = None,
    **values: object,
) -> HTMLResponse:
    state = request.app.state
    page = state.pages.get_template(f"pages/{name}.html.j2").render(
        pub=state.config.publication, colors=state.config.publication.colors, **values
    )
    return HTMLResponse(page, status_code=status, background=background)


def error(request: Request, message: str, status: int = 400) -> HTMLResponse:
    return render(request, "error", status, message=message)


def offered(request: Request) -> dict[str, str]:
    """The newsletters a reader may choose, key → title, in the config's order."""
    return {key: nl.title for key, nl in request.app.state.config.newsletters.items()}


def mail(request: Request, notice: Notice, about: int) -> None:
    """Deliver a notice through `[serve] backend`, in a worker thread after the answer; a
    failure is logged (naming the subscriber by id), never shown."""
    from newsletter.errors import NewsletterError
    from newsletter.send.notice import deliver_notice

    state = request.app.state
    log = logging.getLogger("newsletter.web")
    try:
        outcome = deliver_notice(state.config, state.config.serve.backend, state.outbox_dir, notice)
    except (NewsletterError, OSError) as exc:
        log.error("%s email for subscriber %s not sent: %s", notice.kind, about, exc)
        return
    if outcome.state != "sent":
        log.error(
            "%s email for subscriber %s: %s %s", notice.kind, about, outcome.state, outcome.error
        )
