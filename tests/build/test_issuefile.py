"""The editor's contract: each broken issue file gets the exact message, on the right line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.build.issuefile import load_issue
from newsletter.workspace import Workspace

GOOD = """\
---
newsletter: daily
date: 2025-05-14
status: ready
subject: "Exporters get more help"
preheader: "Credit insurance cover is up"
articles:
  - title: "China's exporters"
    url: https://news.example.com/a
    image: https://news.example.com/i.jpg
    image_alt: "Containers"
    paywalled: true
    summary: |
      First paragraph, the teaser.

      Second paragraph, for subscribers.
  - title: "Second story"
    url: https://news.example.com/b
    summary: Short.
---
The editor's *note*.
"""

PATH = "issues/daily/2025-05-14.md"


def problems_for(ws: Workspace, text: str, name: str = "2025-05-14.md") -> list[str]:
    path = ws.root / "issues" / "daily" / name
    path.write_text(text, encoding="utf-8")
    _, problems = load_issue(path, ws.config, ws.display(path))
    return [p.format() for p in problems.sorted()]


def test_the_good_file_loads_into_the_model(ws: Workspace) -> None:
    path = ws.root / PATH
    path.write_text(GOOD)
    issue, problems = load_issue(path, ws.config)
    assert [p.format() for p in problems] == []
    assert issue is not None
    assert issue.date == dt.date(2025, 5, 14)
    assert [a.title for a in issue.articles] == ["China's exporters", "Second story"]
    assert issue.articles[0].paywalled and not issue.articles[1].paywalled
    assert issue.note == "The editor's *note*."


CASES = [
    (
        "missing-title",
        ('  - title: "Second story"\n    url:', "  - url:"),
        [f"{PATH}:17: error: missing required key 'title' in articles[1]"],
    ),
    (
        "unknown-key-typo",
        ("    summary: Short.", "    sumary: Short."),
        [
            f"{PATH}:17: error: missing required key 'summary' in articles[1]",
            f"{PATH}:19: error: unknown key 'sumary' in articles[1] (did you mean 'summary'?)",
        ],
    ),
    (
        "bad-date",
        ("date: 2025-05-14", "date: 2025-13-01"),
        [f"{PATH}:3: error: date: must be a date like 2025-05-14"],
    ),
    (
        "date-not-file-name",
        ("date: 2025-05-14", "date: 2025-05-15"),
        [f"{PATH}:3: error: date 2025-05-15 does not match the file name 2025-05-14.md"],
    ),
    (
        "relative-url",
        ("url: https://news.example.com/a", "url: news.example.com/a"),
        [f"{PATH}:9: error: articles[0].url: 'news.example.com/a' is not an absolute http(s) URL"],
    ),
    (
        "image-without-alt",
        ('    image_alt: "Containers"\n', ""),
        [f"{PATH}:10: error: articles[0]: image_alt is required when image is set"],
    ),
    (
        "same-url-twice",
        ("url: https://news.example.com/b", "url: https://news.example.com/a"),
        [f"{PATH}:18: error: articles[1]: the same URL is already used by articles[0]"],
    ),
    (
        "unknown-newsletter",
        ("newsletter: daily", "newsletter: dialy"),
        [
            f"{PATH}:2: error: newsletter 'dialy' is not configured in newsletter.toml (did you mean 'daily'?)"
        ],
    ),
    (
        "wrong-folder",
        ("newsletter: daily", "newsletter: weekly"),
        [f"{PATH}:2: error: newsletter 'weekly' does not match the folder issues/daily/"],
    ),
    (
        "yaml-syntax",
        ('subject: "Exporters get more help"', 'subject: "Exporters get more help'),
        [f"{PATH}:6: error: YAML syntax error: did not find expected key"],
    ),
    (
        "duplicate-key",
        ("status: ready", "status: ready\nstatus: draft"),
        [
            f"{PATH}:5: error: duplicate key 'status'",
            f"{PATH}:5: warning: status is draft: it cannot be sent until it is 'ready'",
        ],
    ),
    (
        "not-a-bool",
        ("    paywalled: true", "    paywalled: maybe"),
        [f"{PATH}:12: error: articles[0].paywalled: must be true or false"],
    ),
    (
        "empty-title",
        ('"Second story"', '""'),
        [f"{PATH}:17: error: articles[1].title: must not be empty"],
    ),
    (
        "missing-articles",
        ("articles:\n", "stories:\n"),
        [
            f"{PATH}:2: error: missing required key 'articles'",
            f"{PATH}:7: error: unknown key 'stories'",
        ],
    ),
    (
        "relative-markdown-link",
        ("First paragraph, the teaser.", "First [paragraph](/the-teaser)."),
        [f"{PATH}:14: error: link '/the-teaser' is not an absolute http(s) URL"],
    ),
    (
        "no-front-matter",
        ("---\nnewsletter", "newsletter"),
        [f"{PATH}:1: error: no front matter: the file must start with a line '---'"],
    ),
    (
        "front-matter-not-closed",
        ("---\nThe editor", "The editor"),
        [f"{PATH}:1: error: front matter is not closed: add a line '---' after it"],
    ),
    (
        "status-unknown",
        ("status: ready", "status: done"),
        [f"{PATH}:4: error: status: must be 'draft' or 'ready'"],
    ),
]


@pytest.mark.parametrize(("old_new", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_gets_its_exact_message(
    ws: Workspace, old_new: tuple[str, str], expected: list[str]
) -> None:
    old, new = old_new
    assert old in GOOD
    assert problems_for(ws, GOOD.replace(old, new, 1)) == expected


WARNINGS = [
    (
        "no-preheader",
        ('preheader: "Credit insurance cover is up"\n', ""),
        f"{PATH}:5: warning: no preheader: inboxes will show the first words of the email instead",
    ),
    (
        "long-subject",
        ('subject: "Exporters get more help"', f'subject: "{"Exporters get more help " * 4}"'),
        f"{PATH}:5: warning: subject is 95 characters: over 78, inboxes cut it off",
    ),
    (
        "leftover-tk",
        ("Second paragraph,", "Second paragraph TK,"),
        f"{PATH}:16: warning: leftover placeholder 'TK'",
    ),
    (
        "lorem-ipsum",
        ("Short.", "Lorem ipsum dolor."),
        f"{PATH}:19: warning: leftover placeholder 'Lorem ipsum'",
    ),
    (
        "shortener",
        ("https://news.example.com/b", "https://bit.ly/3xYz"),
        f"{PATH}:18: warning: link to a URL shortener: https://bit.ly/3xYz (link to the page itself)",
    ),
    (
        "draft",
        ("status: ready", "status: draft"),
        f"{PATH}:4: warning: status is draft: it cannot be sent until it is 'ready'",
    ),
]


@pytest.mark.parametrize(
    ("old_new", "expected"), [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS]
)
def test_each_warning_is_reported_and_the_issue_still_loads(
    ws: Workspace, old_new: tuple[str, str], expected: str
) -> None:
    old, new = old_new
    path = ws.root / PATH
    path.write_text(GOOD.replace(old, new, 1))
    issue, problems = load_issue(path, ws.config, PATH)
    assert [p.format() for p in problems] == [expected]
    assert issue is not None


def test_every_problem_of_a_file_is_reported_at_once(ws: Workspace) -> None:
    text = GOOD.replace("url: https://news.example.com/a", "url: ftp://x").replace(
        "summary: Short.", "sumary: Short."
    )
    assert len(problems_for(ws, text)) == 3


def test_words_like_todo_inside_other_words_are_not_leftovers(ws: Workspace) -> None:
    assert problems_for(ws, GOOD.replace("Short.", "Stockton and Todorov met at XXXL.")) == []


def test_a_bom_and_non_ascii_text_are_fine(ws: Workspace) -> None:
    text = "\ufeff" + GOOD.replace("Second story", "Zoë's café in São Paulo, 深圳")
    assert problems_for(ws, text) == []


def test_a_file_that_is_not_utf8_is_an_error(ws: Workspace) -> None:
    path = ws.root / PATH
    path.write_bytes(GOOD.encode("utf-8").replace(b"Short.", b"Caf\xe9."))
    _, problems = load_issue(path, ws.config, PATH)
    offset = GOOD.encode().index(b"Short.") + 3
    assert [p.format() for p in problems] == [f"{PATH}: error: not UTF-8 text (byte {offset})"]


def test_the_file_name_must_be_a_date(ws: Workspace, tmp_path: Path) -> None:
    assert problems_for(ws, GOOD, name="latest.md") == [
        "issues/daily/latest.md: error: the file name must be the issue's date, like 2025-05-14.md"
    ]


# -- #11: bounded time and memory, one line per mistake ------------------------------------

BILLION_LAUGHS = """\
---
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
---
"""


def test_a_billion_laughs_file_is_refused_in_bounded_time_and_memory(ws: Workspace) -> None:
    import time
    import tracemalloc

    tracemalloc.start()
    start = time.perf_counter()
    try:
        found = problems_for(ws, BILLION_LAUGHS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [
        f"{PATH}:2: error: YAML anchors (&name) and aliases (*name) are not allowed in issue files"
    ]
    assert time.perf_counter() - start < 10  # a safety guard: it takes milliseconds
    assert peak < 200 * 1024 * 1024


def test_a_self_referencing_alias_is_one_line(ws: Workspace) -> None:
    text = GOOD.replace("status: ready", "status: ready\nloop: &x [*x]")
    assert problems_for(ws, text) == [
        f"{PATH}:5: error: YAML anchors (&name) and aliases (*name) are not allowed in issue files"
    ]


@pytest.mark.parametrize("depth", [25, 5000, 100_000])
def test_deep_nesting_is_an_error_not_a_recursion_error(ws: Workspace, depth: int) -> None:
    text = GOOD.replace("status: ready", "status: ready\ndeep: " + "[" * depth + "]" * depth)
    assert problems_for(ws, text) == [
        f"{PATH}:5: error: the front matter is nested more than 20 levels deep"
    ]


def test_a_huge_integer_is_an_error(ws: Workspace) -> None:
    text = GOOD.replace('subject: "Exporters get more help"', "subject: " + "9" * 5000)
    assert problems_for(ws, text) == [
        f"{PATH}:5: error: a number with 5000 digits is too long (at most 100)"
    ]


def test_an_issue_file_over_the_size_limit_is_refused_unread(ws: Workspace) -> None:
    from newsletter.workspace import MAX_ISSUE_BYTES

    text = GOOD + "x" * MAX_ISSUE_BYTES
    assert problems_for(ws, text) == [
        f"{PATH}: error: the file is {len(text.encode()):,} bytes: issue files are limited "
        f"to {MAX_ISSUE_BYTES:,} bytes"
    ]


def test_a_fifo_is_refused_without_being_opened(ws: Workspace) -> None:
    import os

    path = ws.root / PATH
    path.unlink()
    os.mkfifo(path)
    _, problems = load_issue(path, ws.config, PATH)
    assert [p.format() for p in problems] == [f"{PATH}: error: not a regular file"]


def test_a_symlink_to_a_device_is_refused(ws: Workspace) -> None:
    path = ws.root / PATH
    path.unlink()
    path.symlink_to("/dev/zero")
    _, problems = load_issue(path, ws.config, PATH)
    assert [p.format() for p in problems] == [f"{PATH}: error: not a regular file"]


def test_issue_files_lists_special_files_so_that_each_is_refused(ws: Workspace) -> None:
    import os

    fifo = ws.root / "issues/daily/2025-06-01.md"
    os.mkfifo(fifo)
    assert fifo in ws.issue_files()
    assert ws.issue_files([fifo]) == [fifo]


LINK_CASES = [
    ("reference", "See [the report][r].\n\n[r]: /relative", "/relative", 23),
    ("protocol-relative", "See [it][r].\n\n[r]: //host/x", "//host/x", 23),
    ("image", "![chart](/img/chart.png)", "/img/chart.png", 21),
    ("image-reference", "![chart][c]\n\n[c]: img.png", "img.png", 23),
    ("autolink", "<ftp://files.example.com/x>", "ftp://files.example.com/x", 21),
    ("link-in-image", "[![c](https://news.example.com/c.png)](/x)", "/x", 21),
]


@pytest.mark.parametrize(
    ("note", "target", "line"), [c[1:] for c in LINK_CASES], ids=[c[0] for c in LINK_CASES]
)
def test_every_link_the_markdown_makes_must_be_absolute(
    ws: Workspace, note: str, target: str, line: int
) -> None:
    text = GOOD.replace("The editor's *note*.", note)
    found = problems_for(ws, text)
    assert found == [f"{PATH}:{line}: error: link '{target}' is not an absolute http(s) URL"]


def test_a_reference_link_in_a_summary_names_its_line(ws: Workspace) -> None:
    text = GOOD.replace("Second paragraph, for subscribers.", "See [r].\n\n      [r]: /x")
    assert problems_for(ws, text) == [f"{PATH}:18: error: link '/x' is not an absolute http(s) URL"]


def test_absolute_links_of_every_kind_pass(ws: Workspace) -> None:
    note = (
        "[a][r] <https://news.example.com/auto> ![i](https://news.example.com/i.png) "
        "[m](mailto:desk@example.com)\n\n[r]: https://news.example.com/ref"
    )
    assert problems_for(ws, GOOD.replace("The editor's *note*.", note)) == []


def test_a_summary_over_its_limit_is_an_error_naming_the_field(ws: Workspace) -> None:
    text = GOOD.replace("summary: Short.", "summary: " + "w" * 25_000)
    assert problems_for(ws, text) == [
        f"{PATH}:19: error: articles[1].summary: 25,000 characters is too long (at most 20,000)"
    ]


def test_a_note_over_its_limit_is_an_error(ws: Workspace) -> None:
    text = GOOD.replace("The editor's *note*.", "w" * 60_000)
    assert problems_for(ws, text) == [
        f"{PATH}:21: error: the note: 60,000 characters is too long (at most 50,000)"
    ]


@pytest.mark.parametrize("char", ["\x07", "\x1b", "\x7f", "\x9b"])
def test_a_control_character_in_a_text_field_names_its_line(ws: Workspace, char: str) -> None:
    escaped = f"\\x{ord(char):02x}"
    text = GOOD.replace('title: "Second story"', f'title: "Second{escaped}story"')
    assert problems_for(ws, text) == [
        f"{PATH}:17: error: articles[1].title: control character U+{ord(char):04X} is not allowed"
    ]


def test_a_control_character_in_the_note_names_its_line(ws: Workspace) -> None:
    text = GOOD.replace("The editor's *note*.", "Line one.\nLine\x07two.")
    assert problems_for(ws, text) == [
        f"{PATH}:22: error: the note: control character U+0007 is not allowed"
    ]


def test_the_markdown_of_an_issue_is_bounded_in_total(ws: Workspace) -> None:
    from newsletter.build.issuefile import MARKDOWN_LIMIT

    head, rest = GOOD.split("articles:\n", 1)
    stories = "".join(
        f"  - title: Story {i}\n    url: https://news.example.com/x/{i}\n"
        f"    summary: {'w' * 19_000}\n"
        for i in range(10)
    )
    assert problems_for(ws, head + "articles:\n" + stories + rest) == [
        f"{PATH}: error: the issue has 190,092 characters of Markdown (summaries, digests, "
        f"who's who, note): at most {MARKDOWN_LIMIT:,}"
    ]


def test_unclosed_brackets_are_bounded(ws: Workspace) -> None:
    """markdown-it reads unclosed '[' in quadratic time: 99,000 of them took 30 s."""
    text = GOOD.replace("The editor's *note*.", "[" * 40_000)
    assert problems_for(ws, text) == [
        f"{PATH}: error: the issue's Markdown has 40,000 '[': at most 2,000"
    ]
