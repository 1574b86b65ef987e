"""A self-signed P-256 key pair that signs webhook requests the way SendGrid does: ECDSA with
SHA-256 over the timestamp followed by the raw body, base64 DER signature."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class WebhookSigner:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()  # as SendGrid shows it

    def sign(self, body: bytes, timestamp: int | str) -> str:
        signature = self.private.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, timestamp: int | str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": self.sign(body, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
        }


def body_of(events: list[dict[str, Any]]) -> bytes:
    """As SendGrid serialises a batch: compact JSON and a trailing CRLF."""
    return json.dumps(events, separators=(",", ":")).encode() + b"\r\n"
