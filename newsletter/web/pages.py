"""What every page handler shares: rendering a page, masking an address, and the forms'
CSRF protection.

CSRF without cookies: each form carries a signed, timestamped token bound to what the form
acts on (the subscriber's link token, or the form's name), and a POST whose Origin (or, for
older browsers, Sec-Fetch-Site) says it came from another site is refused. The one-click
unsubscribe POST is exempt by design (RFC 8058: mailbox providers send it with neither)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse

FORM_MAX_AGE = 24 * 3600  # a page left open all day can still be submitted


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


def csrf_token(request: Request, binding: str) -> str:
    return request.app.state.signer.form_token(binding)


def _same_site(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        allowed = {
            _origin(str(request.base_url)),
            _origin(request.app.state.config.publication.root_url),
        }
        return _origin(origin) in allowed
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site in (None, "same-origin", "same-site", "none")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def checked_form(request: Request, binding: str) -> dict[str, list[str]] | None:
    """The POSTed form's fields, or None if its CSRF token or origin is wrong."""
    if not _same_site(request):
        return None
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str):
        return None
    if not request.app.state.signer.check_form_token(token, binding, FORM_MAX_AGE):
        return None
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields
