"""CSS inlining: what keeps it cheap (#16) changes nothing in what it writes."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from newsletter.build.inline import inline_css

CSS = (
    "p { color: red } .lead { font-weight: bold !important } "
    "@media (max-width: 480px) { p { color: blue } }"
)


def page(body: str) -> str:
    return (
        f'<!doctype html><html><head><style type="text/css">{CSS}</style></head>'
        f"<body>{body}</body></html>"
    )


def test_the_same_css_twice_inlines_the_same_way() -> None:
    """The rules derived from the CSS are kept for the next email: nothing accumulates
    (the second email is not given the first one's rules twice, nor its !important)."""
    first = inline_css(page('<p class="lead">one</p>'), [CSS])
    again = inline_css(page('<p class="lead">one</p>'), [CSS])
    other = inline_css(page("<p>two</p>"), [CSS])
    assert first == again
    assert 'style="color:red; font-weight:bold !important"' in first
    assert '<p style="color:red">two</p>' in other
    for html in (first, again, other):  # the phone rule stays in the head, once
        assert html.count("@media") == 1
        assert html.count("color: blue !important") == 1


def test_inlining_never_runs_requests() -> None:
    """premailer imports requests for remote stylesheets we never fetch: its code (and
    urllib3's) stays unrun in a build, yet a later `import requests` gets the real module."""
    code = (
        "import sys\n"
        "from newsletter.build.inline import inline_css\n"
        f"html = inline_css({page('<p>x</p>')!r}, [{CSS!r}])\n"
        "assert 'style=\"color:red\"' in html, html\n"
        "print(sorted(m for m in ('urllib3', 'requests.models', 'charset_normalizer') if m in sys.modules))\n"
        "import requests\n"
        "print(requests.codes.ok)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "200"]


# the CSS derived once and kept between processes (#16)

PLAIN = "p { color: red } .lead { font-weight: bold !important } h2 a { color: #123456 }"
BODY = '<p class="lead" style="margin: 0 0 12px;">one</p><h2><a href="#">two</a></h2>'


def inline_in_fresh_process(tmp: Path) -> tuple[str, bool]:
    """The inlined page from a new process whose temporary directory is `tmp`, and whether
    cssutils ran in it."""
    code = (
        "import sys\n"
        "from newsletter.build.inline import inline_css\n"
        f"html = inline_css({plain_page(BODY)!r}, [{PLAIN!r}])\n"
        "print(repr(html))\n"
        "print('cssutils.css' in sys.modules)\n"
        "import cssutils\n"  # a later import gets the real module
        "assert cssutils.parseStyle('color: red').color == 'red'\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    html, ran = out.stdout.splitlines()
    return ast.literal_eval(html), ran == "True"


def plain_page(body: str) -> str:
    return (
        f'<!doctype html><html><head><style type="text/css">{PLAIN}</style></head>'
        f"<body>{body}</body></html>"
    )


def cache_files(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(f"newsletter-cache-{os.getuid()}/premailer-*.json"))


def test_a_second_process_inlines_the_same_without_running_cssutils(tmp_path: Path) -> None:
    first, ran_first = inline_in_fresh_process(tmp_path)
    again, ran_again = inline_in_fresh_process(tmp_path)
    assert (ran_first, ran_again) == (True, False)
    assert again == first
    assert '<p class="lead" style="color:red; font-weight:bold !important; margin:0 0 12px">' in (
        again
    )
    assert '<a href="#" style="color:#123456">two</a>' in again
    (kept,) = cache_files(tmp_path)
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700


def test_a_damaged_cache_file_is_not_used_and_is_written_again(tmp_path: Path) -> None:
    first, _ = inline_in_fresh_process(tmp_path)
    (kept,) = cache_files(tmp_path)
    damaged = (
        '{"rules": {"x": 1}, "pairs": {}}',
        '{"rules": {"k:0": [[["ab", "p", "color:red"]], []]}, "pairs": {}}',
        '{"rules": {}, "pairs": {"color: red": [["color"]]}}',
        "{not json",
        "",
    )
    for damage in damaged:
        kept.write_text(damage)
        html, ran = inline_in_fresh_process(tmp_path)
        assert (html, ran) == (first, True)
        assert json.loads(kept.read_text())["pairs"]  # whole again


def test_a_cache_folder_others_can_write_to_is_not_used(tmp_path: Path) -> None:
    folder = tmp_path / f"newsletter-cache-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    first, _ = inline_in_fresh_process(tmp_path)
    again, ran = inline_in_fresh_process(tmp_path)
    assert (again, ran) == (first, True)
    assert cache_files(tmp_path) == []


def test_the_file_of_an_earlier_version_is_removed(tmp_path: Path) -> None:
    folder = tmp_path / f"newsletter-cache-{os.getuid()}"
    folder.mkdir(mode=0o700)
    stale = folder / "premailer-0123456789abcdef0123456789abcdef.json"
    stale.write_text('{"rules": {}, "pairs": {}}')
    inline_in_fresh_process(tmp_path)
    (kept,) = cache_files(tmp_path)
    assert kept != stale and not stale.exists()
