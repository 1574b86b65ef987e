"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook.

Refused (403) unless the signature verifies: with no verification key configured, every
request is refused. The answer is 2xx only once the events are stored, so SendGrid retries
anything we failed to keep; duplicates are stored once."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from newsletter.audience import delivery
from newsletter.send.backends import sendgrid_webhook as webhook

log = logging.getLogger("newsletter.web")
MAX_BODY = 64 * 1024 * 1024  # SendGrid batches are far smaller; this bounds memory


async def sendgrid(request: Request) -> Response:
    verifier: webhook.Verifier | None = request.app.state.webhook_verifier
    if verifier is None:
        return PlainTextResponse("webhook verification key not configured\n", status_code=403)
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return PlainTextResponse("too large\n", status_code=413)
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("too large\n", status_code=413)
    try:
        verifier.check(
            body,
            request.headers.get(webhook.SIGNATURE_HEADER),
            request.headers.get(webhook.TIMESTAMP_HEADER),
        )
    except webhook.SignatureError as exc:
        log.warning("refused a SendGrid webhook request: %s", exc)
        return PlainTextResponse("forbidden\n", status_code=403)
    try:
        batch = webhook.parse(body, request.app.state.now())
    except webhook.PayloadError as exc:
        return PlainTextResponse(f"{exc}\n", status_code=400)
    result = await run_in_threadpool(delivery.record, request.app.state.store, batch)
    return JSONResponse({"received": result.received, "stored": result.stored})
