"""The API's contract: an OpenAPI 3.1 document describing every endpoint, parameter, body
and response, the error shape included. schemathesis tests the running service against
it (tests/web/test_api_contract.py): no 5xx, no answer the schema does not allow, no
status code it does not list."""

from __future__ import annotations

from typing import Any

from newsletter.web.api.bodies import TEXT_PATTERN

NEWSLETTER_STATUS = {"enum": ["pending", "subscribed", "unsubscribed"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "The body is not JSON.",
        401: "No key, or a malformed, unknown or revoked one.",
        403: "The key lacks the scope this needs.",
        404: "No such subscriber (or issue).",
        408: "The body took too long to arrive.",
        409: "The address is suppressed, or unsubscribed (without resubscribe).",
        413: "The body is over 1 MB.",
        422: "A field is wrong: `field` names it.",
        429: "The address had its confirmation emails for the day.",
        503: "The database is unavailable: retry shortly.",
    }
    return {str(c): _error(words[c]) for c in codes}


SUBSCRIBER = {
    "type": "object",
    "required": [
        "id",
        "email",
        "name",
        "tier",
        "source",
        "created_at",
        "updated_at",
        "suppressed",
        "newsletters",
    ],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "tier": {"enum": ["free", "premium"]},
        "source": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "suppressed": {
            "type": ["string", "null"],
            "description": "Why the address is on the suppression list (bounce, complaint, "
            "erased…); null if it is not.",
        },
        "newsletters": {
            "type": "object",
            "additionalProperties": NEWSLETTER_STATUS,
            "description": "Each newsletter the subscriber has a subscription to, and its status.",
        },
    },
}

BRIEF = {
    "type": "object",
    "description": "What a key without subscribers:read is told: the id, and the status of "
    "the newsletters it named.",
    "required": ["id", "newsletters"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer"},
        "newsletters": {
            "type": "object",
            "additionalProperties": {"oneOf": [NEWSLETTER_STATUS, {"type": "null"}]},
        },
    },
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {
                    "type": "string",
                    "description": "bad_request, unauthorized, forbidden, not_found, "
                    "method_not_allowed, timeout, suppressed, unsubscribed, conflict, "
                    "too_large, invalid, idempotency_mismatch, limited, unavailable",
                },
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The input at fault."},
            },
        }
    },
}


def _signup(newsletter: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["email", "newsletters"],
        "additionalProperties": False,
        "properties": {
            "email": {
                "type": "string",
                "format": "email",
                "maxLength": 320,
                "examples": ["reader@example.com"],
            },
            "name": {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN},
            "tier": {"enum": ["free", "premium"]},
            "newsletters": {
                "type": "array",
                "minItems": 1,
                "items": newsletter,
                "description": "Newsletter keys from newsletter.toml.",
            },
            "confirmed": {
                "type": "boolean",
                "description": "The caller vouches that the reader proved the address: "
                "subscribed at once (needs subscribers:confirm). Otherwise pending, and a "
                "confirmation email goes out (double opt-in).",
            },
            "resubscribe": {
                "type": "boolean",
                "description": "Subscribe an address again to the newsletters named even if it "
                "unsubscribed from them.",
            },
            "source": {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN},
        },
    }


def _change(newsletter: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tier": {"enum": ["free", "premium"]},
            "name": {"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN},
            "newsletters": {
                "type": "object",
                "propertyNames": newsletter,
                "additionalProperties": {"enum": ["subscribed", "unsubscribed"]},
                "description": "subscribed needs subscribers:confirm.",
            },
        },
    }


PAGE = {
    "type": "object",
    "required": ["data", "next_cursor"],
    "additionalProperties": False,
    "properties": {
        "data": {"type": "array", "items": _ref("Subscriber")},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as cursor for the next page; null on the last one.",
        },
    },
}

LINK = {
    "type": "object",
    "required": ["url", "clicks", "clickers"],
    "properties": {
        "url": {"type": "string"},
        "clicks": {"type": "integer"},
        "clickers": {"type": "integer"},
    },
}

_COUNTS = (
    "recipients sent failed unknown pending delivered bounced blocked dropped deferred "
    "complained unsubscribed opens_human opens_machine clicks clickers events_without_send"
).split()
STATS = {
    "type": "object",
    "description": "The figures of `newsletter stats --json`.",
    "required": ["issue", "backend", *_COUNTS, "top_links", "sent_without_events"],
    "properties": {
        "issue": {"type": "string"},
        "backend": {"type": ["string", "null"]},
        **{name: {"type": "integer"} for name in _COUNTS},
        "top_links": {"type": "array", "items": _ref("Link")},
        "sent_without_events": {"type": ["integer", "null"]},
        "failure_reasons": {
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "integer"}],
                "minItems": 2,
                "maxItems": 2,
            },
        },
        "scheduled_for": {
            "type": ["string", "null"],
            "description": "When SendGrid was told to send it (schedule_ahead), ISO 8601.",
        },
        "stories": {
            "type": "array",
            "description": "Each story of the issue, in its order: who clicked it, by tier.",
            "items": {
                "type": "object",
                "properties": {
                    "issue": {"type": "string"},
                    "key": {"type": "string"},
                    "title": {"type": "string"},
                    "position": {"type": "integer"},
                    "section": {"type": ["string", "null"]},
                    "byline": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "paywalled": {"type": "boolean"},
                    "clickers": {"type": "integer"},
                    "clicks": {"type": "integer"},
                    "click_rate": {"type": ["number", "null"]},
                    "by_tier": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "tier": {"type": "string"},
                                "delivered": {"type": "integer"},
                                "clickers": {"type": "integer"},
                                "clicks": {"type": "integer"},
                                "rate": {"type": ["number", "null"]},
                            },
                        },
                    },
                },
            },
        },
        "other_links": {
            "type": "array",
            "description": "Clicks on links that are not stories, by kind.",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "clickers": {"type": "integer"},
                    "clicks": {"type": "integer"},
                },
            },
        },
    },
}

SUBSCRIBER_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def document(server: str, newsletters: list[str]) -> dict[str, Any]:
    """`newsletters`: the publication's newsletter keys (newsletter.toml), the values that
    the bodies and paths take."""
    security: list[dict[str, list[str]]] = [{"key": []}]
    key: dict[str, Any] = {"enum": sorted(newsletters)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "newsletter subscriber API",
            "version": "1",
            "description": "For the publisher's systems: the paywall, the CRM, the site's "
            "sign-up box. Every call needs `Authorization: Bearer <key>` "
            "(`newsletter api-key create`); each needs a scope.",
        },
        "servers": [{"url": server}],
        "security": security,
        "components": {
            "securitySchemes": {
                "key": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A key from `newsletter api-key create` (nlk_…).",
                }
            },
            "schemas": {
                "Subscriber": SUBSCRIBER,
                "SubscriberBrief": BRIEF,
                "Error": ERROR,
                "Signup": _signup(key),
                "Change": _change(key),
                "Page": PAGE,
                "Link": LINK,
                "IssueStats": STATS,
            },
        },
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no key needed).",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI document."),
                    },
                }
            },
            "/api/v1/subscribers": {
                "post": {
                    "operationId": "createSubscriber",
                    "summary": "Add a subscriber, or newsletters to one (subscribers:write).",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "A retry with the same key and body gets the "
                            "first answer and changes nothing; with another body, 422.",
                            "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Signup")}},
                    },
                    "responses": {
                        "201": _json(
                            {"oneOf": [_ref("Subscriber"), _ref("SubscriberBrief")]},
                            "A new subscriber (all of it with subscribers:read).",
                        ),
                        "200": _json(
                            {"oneOf": [_ref("Subscriber"), _ref("SubscriberBrief")]},
                            "An existing subscriber.",
                        ),
                        **_errors(400, 401, 403, 408, 409, 413, 422, 429, 503),
                    },
                },
                "get": {
                    "operationId": "listSubscribers",
                    "summary": "Find one by address, or page through them (subscribers:read).",
                    "parameters": [
                        {
                            "name": "email",
                            "in": "query",
                            "description": "Exact match on the normalised address; not "
                            "combined with the other filters.",
                            "schema": {"type": "string"},
                        },
                        {"name": "newsletter", "in": "query", "schema": key},
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "enum": ["subscribed", "pending", "unsubscribed", "suppressed"]
                            },
                        },
                        {
                            "name": "updated_since",
                            "in": "query",
                            "description": "Changed after this moment (unsubscribes too).",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("Page"), "A page, in id order (keyset)."),
                        **_errors(401, 403, 422, 503),
                    },
                },
            },
            "/api/v1/subscribers/{id}": {
                "parameters": [SUBSCRIBER_ID],
                "get": {
                    "operationId": "getSubscriber",
                    "summary": "One subscriber (subscribers:read).",
                    "responses": {
                        "200": _json(_ref("Subscriber"), "The subscriber."),
                        **_errors(401, 403, 404, 503),
                    },
                },
                "patch": {
                    "operationId": "changeSubscriber",
                    "summary": "Change tier, name or subscriptions (subscribers:write).",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Change")}},
                    },
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("Subscriber"), _ref("SubscriberBrief")]},
                            "The subscriber after the change.",
                        ),
                        **_errors(400, 401, 403, 404, 408, 409, 413, 422, 503),
                    },
                },
                "delete": {
                    "operationId": "eraseSubscriber",
                    "summary": "Erase, as `newsletter subscribers forget` (subscribers:write).",
                    "responses": {
                        "204": {"description": "Erased; the address stays suppressed."},
                        **_errors(401, 403, 404, 503),
                    },
                },
            },
            "/api/v1/issues/{newsletter}/{date}/stats": {
                "get": {
                    "operationId": "issueStats",
                    "summary": "An issue's figures, as `newsletter stats --json` (stats:read).",
                    "parameters": [
                        {
                            "name": "newsletter",
                            "in": "path",
                            "required": True,
                            "schema": key,
                        },
                        {
                            "name": "date",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "format": "date"},
                        },
                    ],
                    "responses": {
                        "200": _json(_ref("IssueStats"), "The figures."),
                        **_errors(401, 403, 404, 503),
                    },
                }
            },
        },
    }
