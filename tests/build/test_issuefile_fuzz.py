"""Any issue file at all: `newsletter check` answers with lines and an exit status (0 or 1),
never a traceback, in bounded time (#11). Hypothesis writes the files: random front matter
(keys, scalars, anchors and aliases, nesting, long strings, big numbers, control
characters, YAML tags) and random Markdown for the summaries and the note."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from newsletter.cli import cli

ISSUE = "issues/daily/2025-05-14.md"
CONTROL = "".join(chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 127, 0x85, 0x9B])
MARKDOWN = "[]()<>*_`#!-+=|\\&;:/ \n\tab1." + CONTROL[:4]

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.text(
    alphabet=MARKDOWN, max_size=300
)
long_text = st.builds(
    lambda s, n: s * n, st.text(alphabet=MARKDOWN, min_size=1, max_size=5), st.integers(1, 30_000)
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(lambda n: "9" * n, st.integers(1, 6_000)),
    st.floats(allow_nan=True),
    text,
    long_text,
    st.sampled_from(
        [
            "2025-05-14",
            "2025-02-30",
            "https://news.example.com/a",
            "/relative",
            "//host/x",
            "mailto:desk@example.com",
            "ready",
            "draft",
        ]
    ),
)
value = st.recursive(
    scalar,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["title", "url", "summary", "x", "digest"]), children, max_size=4
        )
    ),
    max_leaves=12,
)
# YAML that JSON cannot say: anchors, aliases, tags, deep nesting, raw control characters
RAW = st.sampled_from(
    [
        "&a [1, 2]",
        "*a",
        "&a [*a]",
        "&b [&a [x, x, x, x, x, x, x, x, x], [*a, *a, *a, *a, *a, *a, *a, *a, *a]]",
        "&a {b: *a}",
        "[" * 30 + "]" * 30,
        "[" * 3000 + "]" * 3000,
        "{a: " * 50 + "1" + "}" * 50,
        "!!python/object/apply:os.system ['true']",
        "!!binary aGVsbG8=",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!!int 0x" + "f" * 5000,
        "!!float 1e99999",
        "0b" + "1" * 5000,
        "1:2:3:4:5",
        '"\\x07\\x1b"',
        '"\\ud800"',
        "'unterminated",
        "|\n  block\n  text",
        "\x07raw",
        "? [complex]\n: key",
        "<<: {merge: 1}",
    ]
)
KEYS = ["newsletter", "date", "status", "subject", "preheader", "articles", "extra", "<<"]
GOOD = {
    "newsletter": '"daily"',
    "date": "2025-05-14",
    "status": "ready",
    "subject": '"A subject"',
    "preheader": '"A preheader"',
    "articles": "\n  - title: T\n    url: https://news.example.com/a\n    summary: Short.",
}


def yaml_of(item: object) -> str:
    """Flow YAML: JSON, except that numbers of digits stay unquoted (big integers)."""
    if isinstance(item, str) and item.isdigit():
        return item
    if isinstance(item, list):
        return "[" + ", ".join(yaml_of(i) for i in item) + "]"
    if isinstance(item, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {yaml_of(v)}" for k, v in item.items()) + "}"
    return json.dumps(item)


@st.composite
def issue_files(draw: st.DrawFn) -> str:
    lines = []
    for key in KEYS:
        choice = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 3, 4]))
        if choice == 0 and key in GOOD:
            lines.append(f"{key}: {GOOD[key]}")
        elif choice == 1:
            lines.append(f"{key}: {yaml_of(draw(value))}")
        elif choice == 2:
            lines.append(f"{key}: {draw(RAW)}")
        elif choice == 3 and key == "articles":
            summary = draw(text | long_text)
            lines.append(
                "articles:\n  - title: T\n    url: https://news.example.com/a\n"
                f"    summary: {json.dumps(summary)}"
            )
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(
            draw(st.integers(0, len(lines))),
            f"{draw(text.filter(str.isidentifier) | st.just('k'))}: {draw(RAW)}",
        )
    body = draw(text | long_text)
    return "---\n" + "\n".join(lines) + "\n---\n" + body


@settings(
    max_examples=60,
    deadline=5_000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(source=issue_files())
def test_check_never_shows_a_traceback(workspace: Path, source: str) -> None:
    path = workspace / ISSUE
    path.write_bytes(source.encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(cli, ["-w", str(workspace), "check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    event(f"exit {result.exit_code}")  # --hypothesis-show-statistics: how many rendered
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    for line in result.output.splitlines():
        assert (
            line.endswith(("warning", "warnings")) or ": error: " in line or ": warning: " in line
        ), line
