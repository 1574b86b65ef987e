"""What both halves share: the way they name an issue."""

from __future__ import annotations

import datetime as dt

from newsletter.model import issue_key


def test_an_issue_is_named_by_its_newsletter_and_date() -> None:
    assert issue_key("daily", dt.date(2025, 5, 4)) == "daily/2025-05-04"
