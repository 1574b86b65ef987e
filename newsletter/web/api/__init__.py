"""The HTTP API for the publisher's systems (`/api/v1/`): JSON in and out, a key with scopes
on every call but the OpenAPI document, errors as `{"error": {"code", "message"}}`.

`auth` checks keys and scopes (and is what any other endpoint behind a key calls),
`bodies` reads and validates what callers send, `endpoints` are the handlers over
`audience.profiles`, and `openapi` is the contract that schemathesis tests the service
against. The endpoints are listed with every other one in `web/routes.py`."""
