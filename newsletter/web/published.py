"""The archive, served from the build output: the archive page, each issue's web version and
each newsletter's Atom feed. Nothing else in build/ is reachable: the premium emails are
there too, so names are checked against an allow-list, never joined from the request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.web.pages import error

CACHE = "public, max-age=300"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


async def _serve(request: Request, path: Path, media_type: str) -> Response:
    body = await run_in_threadpool(_read, path)
    if body is None:
        return error(request, "There is no such page in the archive.", 404)
    return Response(body, media_type=media_type, headers={"Cache-Control": CACHE})


def _build(request: Request) -> Path:
    return request.app.state.workspace.build_dir


async def index(request: Request) -> Response:
    return await _serve(request, _build(request) / "index.html", "text/html; charset=utf-8")


async def issue(request: Request) -> Response:
    newsletter = request.path_params["newsletter"]
    date = request.path_params["date"]
    if newsletter not in request.app.state.config.newsletters or not _is_date(date):
        return error(request, "There is no such page in the archive.", 404)
    path = _build(request) / newsletter / date / "index.html"
    return await _serve(request, path, "text/html; charset=utf-8")


async def feed(request: Request) -> Response:
    newsletter = request.path_params["newsletter"]
    if newsletter not in request.app.state.config.newsletters:
        return error(request, "There is no such feed.", 404)
    path = _build(request) / newsletter / "feed.xml"
    return await _serve(request, path, "application/atom+xml; charset=utf-8")


def _is_date(value: str) -> bool:
    try:
        return dt.date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False
