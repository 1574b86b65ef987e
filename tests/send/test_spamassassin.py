"""The sample's messages, as sent to the outbox, through SpamAssassin (local tests only):
a score of 0 or below, no rule that scores points, and none of the hidden-text rules
(HTML_FONT_LOW_CONTRAST fired on every message while the preheader was white on beige).

What still fires, at 0 points: NO_RECEIVED / NO_RELAYS (a message not yet sent has no
Received headers), HTML_MESSAGE, LOTS_OF_MONEY (the news itself: "$1.2 billion") and, on
the free weekly, HTML_IMAGE_RATIO_08 (teasers are short next to the stories' photos)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

ISSUES = ["daily/2025-05-14", "weekly/2025-05-17", "green/2025-05-17"]
HIDDEN_TEXT = {
    "HTML_FONT_LOW_CONTRAST",
    "HTML_FONT_TINY",
    "HTML_FONT_SIZE_TINY",
    "HTML_FONT_FACE_BAD",
}
RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s", re.M)


@pytest.fixture(scope="module")
def spamassassin() -> str:
    """Debian's `spamassassin`: skipped with a reason where missing, a failure when CI is set."""
    found = shutil.which("spamassassin")
    if not found:
        reason = "SpamAssassin not found (apt-get install spamassassin)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def run(runner: CliRunner, root: Path, *args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(cli, ["-w", str(root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def score(spamassassin: str, eml: Path, home: Path) -> tuple[float, dict[str, float]]:
    out = subprocess.run(
        [spamassassin, "-t", "-L"],
        input=eml.read_bytes(),
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "HOME": str(home)},
    ).stdout
    status = email.message_from_bytes(out, policy=email.policy.compat32)["X-Spam-Status"]
    flat = " ".join(str(status).split())
    points = float(re.search(r"score=(-?[\d.]+)", flat).group(1))  # type: ignore[union-attr]
    tests = re.search(r"tests=(\S*)", flat).group(1)  # type: ignore[union-attr]
    fired = {t for t in tests.split(",") if t and t != "none"}
    report = out.decode(errors="replace").split("Content analysis details:", 1)[1]
    table = {name: float(pts) for pts, name in RULE.findall(report)}
    assert fired <= set(table), (fired, table)  # the report lists every rule that fired
    return points, {name: table[name] for name in fired}


def test_spamassassin_scores_every_sample_message_at_zero_or_below(
    spamassassin: str,
    runner: CliRunner,
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'newsletter.db'}")
    monkeypatch.setenv("NEWSLETTER_SECRET", "test-secret-" + "x" * 40)
    readers = tmp_path / "readers.csv"
    readers.write_text("email,name,tier\nfree@example.com,Fay,free\npaid@example.com,Pat,premium\n")
    for newsletter in ("daily", "weekly", "green"):
        run(runner, workspace, "subscribers", "import", str(readers), "--newsletter", newsletter)
    for issue in ISSUES:
        run(runner, workspace, "send", issue, "--late", "--yes")
    messages = sorted((workspace / "outbox").glob("*/*/*.eml"))
    assert len(messages) == 2 * len(ISSUES)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: score(spamassassin, p, tmp_path), messages))
    bad = {
        str(path.relative_to(workspace / "outbox")): (points, tests)
        for path, (points, tests) in zip(messages, results, strict=True)
        if points > 0 or any(p > 0 for p in tests.values()) or HIDDEN_TEXT & set(tests)
    }
    assert bad == {}
