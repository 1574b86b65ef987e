"""Every endpoint of the service, at one glance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from newsletter.web import unsubscribe, webhook
from newsletter.workspace import Workspace


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


def routes(workspace: Workspace) -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.one_click, methods=["POST"]),
        Route("/webhooks/sendgrid", webhook.sendgrid, methods=["POST"]),
    ]
