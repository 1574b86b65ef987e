"""CSS inlining: what keeps it cheap (#16) changes nothing in what it writes."""

from __future__ import annotations

import subprocess
import sys

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
