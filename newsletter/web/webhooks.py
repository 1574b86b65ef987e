"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook.

Refused (403) unless the signature verifies: with no verification key configured, every
request is refused. The answer is 2xx only once the events are stored, so SendGrid retries
anything we failed to keep; duplicates are stored once."""

from __future__ import annotations

import logging
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from newsletter.audience import delivery
from newsletter.send.backends import sendgrid_webhook as webhook

log = logging.getLogger("newsletter.web")
# SendGrid's batches are far smaller (5,000 events: about 1 MB); this bounds memory:
# limits.BodyLimit stops reading any body, chunked or not, at this size (413)
MAX_BODY = 8 * 1024 * 1024
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class _Refused(Exception):
    """The request's answer, decided in the worker thread."""

    def __init__(self, response: Response):
        self.response = response


async def sendgrid(request: Request) -> Response:
    verifier: webhook.Verifier | None = request.app.state.webhook_verifier
    if verifier is None:
        return PlainTextResponse("webhook verification key not configured\n", status_code=403)
    signature = request.headers.get(webhook.SIGNATURE_HEADER)
    timestamp = request.headers.get(webhook.TIMESTAMP_HEADER)
    if timestamp is not None and not _TIMESTAMP.fullmatch(timestamp):  # any bytes: never a 500
        log.warning("refused a SendGrid webhook request: malformed timestamp")
        return PlainTextResponse("forbidden\n", status_code=403)
    body = await request.body()  # at most MAX_BODY bytes (limits.BodyLimit)
    state = request.app.state

    def verify_parse_record() -> delivery.Recorded:
        """In a worker thread: a large batch's hashing and parsing never stall the loop."""
        try:
            verifier.check(body, signature, timestamp)  # before the body is parsed
        except webhook.SignatureError as exc:
            log.warning("refused a SendGrid webhook request: %s", exc)
            raise _Refused(PlainTextResponse("forbidden\n", status_code=403)) from None
        try:
            batch = webhook.parse(body, state.now())
        except webhook.PayloadError as exc:
            raise _Refused(PlainTextResponse(f"{exc}\n", status_code=400)) from None
        return delivery.record(state.store, batch)

    try:
        result = await run_in_threadpool(verify_parse_record)
    except _Refused as refused:
        return refused.response
    return JSONResponse({"received": result.received, "stored": result.stored})
