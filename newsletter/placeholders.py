"""Per-recipient values: the build leaves a marker, the send fills it in.

A marker is `%%name%%`. Nothing per-recipient goes through MJML: the compiled email is the
same for every reader of a tier, and sending only replaces markers (HTML-escaped in the
HTML part, as is in the text part).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

NAMES = ("name", "email", "unsubscribe_url", "preferences_url")
_MARKER = re.compile(r"%%([a-z_]+)%%")


def marker(name: str) -> str:
    if name not in NAMES:
        raise KeyError(f"unknown placeholder '{name}'")
    return f"%%{name}%%"


def used(text: str) -> set[str]:
    return set(_MARKER.findall(text))


def unknown(text: str) -> set[str]:
    return used(text) - set(NAMES)


def fill(text: str, values: Mapping[str, str], *, for_html: bool) -> str:
    """Replace every marker; a missing value is an error, never a blank."""

    def replace(m: re.Match[str]) -> str:
        value = values[m.group(1)]
        return html.escape(value, quote=True) if for_html else value

    return _MARKER.sub(replace, text)


def segments(text: str) -> list[tuple[str, bool]]:
    """The text cut at its markers: (static text, False) and (marker name, True), in order."""
    out: list[tuple[str, bool]] = []
    position = 0
    for m in _MARKER.finditer(text):
        if m.start() > position:
            out.append((text[position : m.start()], False))
        out.append((m.group(1), True))
        position = m.end()
    if position < len(text):
        out.append((text[position:], False))
    return out
