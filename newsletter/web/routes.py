"""Every endpoint of the service, at one glance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from newsletter.web import admin, preferences, published, subscribe, unsubscribe, webhooks
from newsletter.web.api import endpoints as api
from newsletter.workspace import Workspace


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok\n")


def routes(workspace: Workspace) -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        # a link in every email: GET shows, POST acts (RFC 8058 one-click, no CSRF token)
        Route("/unsubscribe/{token}", unsubscribe.page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.one_click, methods=["POST"]),
        # the footer link: it may take newsletters away; adding one is a sign-up, and the
        # data and erasure buttons only mail the address a link (a forwarded email is not it)
        Route("/preferences/{token}", preferences.page, methods=["GET"]),
        Route("/preferences/{token}", preferences.save, methods=["POST"]),
        Route("/preferences/{token}/data", preferences.request_data, methods=["POST"]),
        Route("/preferences/{token}/delete", preferences.request_delete, methods=["POST"]),
        # that link, valid an hour: GET shows a button, POST downloads or erases
        Route("/data/{token}", preferences.data_page, methods=["GET"]),
        Route("/data/{token}", preferences.data_act, methods=["POST"]),
        # double opt-in
        Route("/subscribe", subscribe.page, methods=["GET"]),
        Route("/subscribe", subscribe.submit, methods=["POST"]),
        Route("/confirm/{token}", subscribe.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", subscribe.confirm, methods=["POST"]),
        Route("/webhooks/sendgrid", webhooks.sendgrid, methods=["POST"]),
        # the publisher's systems (JSON, a key with scopes; web/api/openapi.py describes it)
        Route("/api/v1/openapi.json", api.openapi, methods=["GET"]),
        Route("/api/v1/subscribers", api.create_subscriber, methods=["POST"]),
        Route("/api/v1/subscribers", api.list_subscribers, methods=["GET"]),
        Route("/api/v1/subscribers/{id}", api.get_subscriber, methods=["GET"]),
        Route("/api/v1/subscribers/{id}", api.patch_subscriber, methods=["PATCH"]),
        Route("/api/v1/subscribers/{id}", api.delete_subscriber, methods=["DELETE"]),
        Route("/api/v1/issues/{newsletter}/{date}/stats", api.issue_stats, methods=["GET"]),
        # the publisher's staff: the report, behind a key (never public, never cached)
        Route("/admin/report", admin.report, methods=["GET"]),
        # the archive, from build/
        Route("/", published.index, methods=["GET"]),
        Route("/{newsletter}/feed.xml", published.feed, methods=["GET"]),
        Route("/{newsletter}/{date}/", published.issue, methods=["GET"]),
        Route("/{newsletter}/{date}", published.issue, methods=["GET"]),
    ]
