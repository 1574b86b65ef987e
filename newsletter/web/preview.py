"""`newsletter preview`: a local page that shows one issue as it will be received.

The shell page (/) has switches (desktop or phone width, free or premium, HTML or text) that
are plain links, and an iframe with the email (/email). A background task watches the issue
files, the templates and the config (watchfiles) and re-renders on each change; the page
asks /version twice a second and reloads the iframe when it moves. Check errors are shown in
the page, never a crash."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter.build.pipeline import Rendering, render_preview
from newsletter.build.templating import environment
from newsletter.problems import Problem
from newsletter.workspace import Workspace

SHELL_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
WIDTHS = {"desktop": 800, "phone": 375}
SCRIPT = """
(function () {
  var shown = document.body.getAttribute("data-version");
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (r) { return r.text(); })
      .then(function (v) {
        if (v.trim() !== shown) { location.reload(); }
        else { setTimeout(poll, 500); }
      }).catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 500);
})();
"""


@dataclass
class State:
    root: Path
    path: Path
    rendering: Rendering
    version: int = 1

    def reload(self) -> None:
        """Render again; any failure is shown in the page, never the end of the watcher
        (which would leave the page without reloads for good)."""
        try:
            self.rendering = render_preview(self.root, self.path)
        except Exception as exc:  # whatever it is, the editor must see it
            shown = Workspace(self.root).display(self.path)
            first = (str(exc).strip().splitlines() or [""])[0]
            reason = f"{type(exc).__name__}: {first}"
            self.rendering = Rendering(
                self.path,
                problems=[
                    Problem(
                        shown, None, "error", f"the preview could not render the issue: {reason}"
                    )
                ],
            )
        self.version += 1

    async def refresh(self) -> None:
        await run_in_threadpool(self.reload)


# each switch: its query parameter, and its values with their labels (the first: default)
SWITCHES = {
    "width": {"desktop": "Desktop", "phone": "Phone"},
    "tier": {"free": "Free", "premium": "Premium"},
    "format": {"html": "HTML", "text": "Text"},
}


def _current(request: Request) -> dict[str, str]:
    """Each switch's value from the query, or its default when missing or unknown."""
    chosen = {}
    for name, options in SWITCHES.items():
        value = request.query_params.get(name, "")
        chosen[name] = value if value in options else next(iter(options))
    return chosen


def _switches(current: dict[str, str]) -> list[list[dict[str, object]]]:
    return [
        [
            {
                "href": "/?" + urlencode({**current, name: value}),
                "on": current[name] == value,
                "id": f"{name}-{value}",
                "label": label,
            }
            for value, label in options.items()
        ]
        for name, options in SWITCHES.items()
    ]


def _page(request: Request, template: str, **values: object) -> str:
    state: State = request.app.state.preview
    return request.app.state.pages.get_template(template).render(
        rendering=state.rendering, version=state.version, **values
    )


async def shell(request: Request) -> Response:
    state: State = request.app.state.preview
    current = _current(request)
    src = "/email?" + urlencode(
        {"tier": current["tier"], "format": current["format"], "v": state.version}
    )
    page = _page(
        request,
        "preview/shell.html.j2",
        name=request.app.state.workspace.display(state.path),
        switches=_switches(current),
        src=src,
        width=WIDTHS[current["width"]],
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": SHELL_POLICY})


async def email(request: Request) -> Response:
    state: State = request.app.state.preview
    current = _current(request)
    tier, kind = current["tier"], current["format"]
    r = state.rendering
    headers = {"Content-Security-Policy": EMAIL_POLICY}
    if r.errors:
        page = _page(request, "preview/problems.html.j2")
        return HTMLResponse(page, status_code=422, headers=headers)
    if kind == "html":
        return HTMLResponse(r.emails[f"{tier}.html"], headers=headers)
    body = html.escape(r.emails[f"{tier}.txt"])
    page = (
        '<!doctype html><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<pre style="white-space:pre-wrap;overflow-wrap:anywhere;font:14px/1.45 ui-monospace,'
        f'monospace;margin:16px;text-align:left">{body}</pre>'
    )
    return HTMLResponse(page, headers=headers)


async def version(request: Request) -> Response:
    return PlainTextResponse(str(request.app.state.preview.version))


async def script(_request: Request) -> Response:
    return Response(SCRIPT, media_type="text/javascript")


def watched(workspace: Workspace) -> list[Path]:
    paths = [workspace.config_path, workspace.issues_dir, workspace.templates_dir]
    return [p for p in paths if p.exists()]


def create_preview_app(workspace: Workspace, path: Path, watch: bool = True) -> Any:
    """`watch=False` for tests that drive `refresh` themselves."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(app)) if watch else None
        try:
            yield
        finally:
            if task is not None:
                app.state.stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(
        routes=[
            Route("/", shell),
            Route("/email", email),
            Route("/version", version),
            Route("/preview.js", script),
        ],
        lifespan=lifespan,
    )
    app.state.workspace = workspace
    app.state.pages = environment(None)
    app.state.preview = State(workspace.root, path, render_preview(workspace.root, path))
    app.state.stop = asyncio.Event()
    return app


async def _watch(app: Starlette) -> None:
    from watchfiles import awatch

    state: State = app.state.preview
    async for _changes in awatch(*watched(app.state.workspace), stop_event=app.state.stop):
        await state.refresh()  # never raises: State.reload shows every failure in the page


def run_preview(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
