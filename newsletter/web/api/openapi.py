"""placeholder"""

from typing import Any


def document(server: str) -> dict[str, Any]:
    return {"openapi": "3.1.0"}
