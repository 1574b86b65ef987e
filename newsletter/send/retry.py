"""Backoff with jitter, shared by the SMTP and SendGrid backends."""

from __future__ import annotations

import random


def delays(first: float, attempts: int, cap: float = 60.0) -> list[float]:
    """Exponential delays with full jitter: first, 2·first, 4·first… each drawn from [d/2, d]."""
    out = []
    delay = first
    for _ in range(attempts):
        out.append(random.uniform(delay / 2, delay) if delay else 0.0)
        delay = min(delay * 2, cap)
    return out
