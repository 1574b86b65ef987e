"""The archive, served from the build output: the archive page, each issue's web version and
each newsletter's Atom feed. Nothing else in build/ is reachable: the premium emails are
there too, so names are checked against an allow-list, never joined from the request."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.web.pages import error

CACHE = "public, max-age=300"


def _read(path: Path, root: Path) -> bytes | None:
    """A regular file inside `root`, after following every link; else None (a 404). A link
    out of build/ (a stray `ln -s /etc`), a FIFO (it would hang the reader), a directory or a
    device is never served. The file is opened without following a link and without
    blocking, then checked again on the open descriptor: nothing swaps it in between."""
    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(root.resolve(strict=True)):
            return None
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, RuntimeError):  # missing, a loop of links, unreadable
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read()
    finally:
        os.close(fd)


async def _serve(request: Request, path: Path, media_type: str) -> Response:
    body = await run_in_threadpool(_read, path, _build(request))
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
    folder = _build(request) / newsletter / date
    if not await run_in_threadpool(_ready, folder, _build(request)):
        return error(request, "There is no such page in the archive.", 404)
    return await _serve(request, folder / "index.html", "text/html; charset=utf-8")


def _ready(folder: Path, root: Path) -> bool:
    """A draft is built (to preview and test-send) but not published: only the web version of
    an issue whose manifest says `ready` is served, as only those are in the archive."""
    raw = _read(folder / "manifest.json", root)
    try:
        return raw is not None and json.loads(raw).get("status") == "ready"
    except (ValueError, AttributeError):
        return False


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
