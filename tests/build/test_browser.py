"""The built email and pages in a real headless Chromium: layout at phone and desktop widths,
and accessibility by axe-core."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import open_offline

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def built(sample_build: Path) -> Path:
    return sample_build


@pytest.mark.parametrize(
    "name",
    [
        "daily/2025-05-14/free.html",
        "daily/2025-05-14/premium.html",
        "weekly/2025-05-17/free.html",
        "daily/2025-05-14/index.html",
        "index.html",
    ],
)
def test_nothing_overflows_horizontally_on_a_375px_phone(browser, built: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    page = open_offline(browser, built / name, 375)
    assert page.evaluate(OVERFLOW) <= 0
    # and the story column really uses the phone's width rather than a fixed 600px
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('h2')].map(e => e.getBoundingClientRect().right))"
    )
    assert 200 < widest <= 375
    page.close()


def test_desktop_width_keeps_a_600px_column(browser, built: Path) -> None:  # type: ignore[no-untyped-def]
    page = open_offline(browser, built / "daily/2025-05-14/free.html", 800)
    assert page.evaluate(OVERFLOW) <= 0
    width = page.evaluate(
        "document.querySelector('h1').closest('div[style*=\"max-width:600px\"]').getBoundingClientRect().width"
    )
    assert width == 600
    page.close()
    page = open_offline(browser, built / "daily/2025-05-14/free.html", 600)
    assert page.evaluate(OVERFLOW) <= 0
    page.close()


@pytest.mark.parametrize(
    "name", ["daily/2025-05-14/free.html", "daily/2025-05-14/premium.html", "index.html"]
)
def test_no_serious_or_critical_accessibility_violation(browser, built: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    page = open_offline(browser, built / name, 600)
    results = Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    page.close()


# -- every email, both tiers, light and dark, phone and desktop (#12) -------------------------

EMAILS = {"daily": "daily/2025-05-14", "weekly": "weekly/2025-05-17", "green": "green/2025-05-17"}

# the contrast of an element's text on the first opaque background behind it
CONTRAST = """el => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  let bg = null;
  for (let e = el; e && !bg; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && rgb(c).length === 3 || (rgb(c)[3] ?? 0) > 0) bg = c;
  }
  bg = bg || 'rgb(255, 255, 255)';
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(bg))].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("tier", ["free", "premium"])
@pytest.mark.parametrize("newsletter", sorted(EMAILS))
def test_every_email_reads_well_light_and_dark_on_phone_and_desktop(
    browser, built: Path, newsletter: str, tier: str, scheme: str, width: int
) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    page = open_offline(
        browser, built / EMAILS[newsletter] / f"{tier}.html", width, color_scheme=scheme
    )
    try:
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is (
            scheme == "dark"
        )
        assert page.evaluate(OVERFLOW) <= 0
        results = Axe().run(page)
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == []
        # the footer and its unsubscribe link: on screen, inside the viewport's width, legible
        link = page.locator("a", has_text="Unsubscribe")
        assert link.count() == 1 and link.is_visible()
        box = link.bounding_box()
        assert (
            box is not None
            and box["width"] > 0
            and 0 <= box["x"]
            and box["x"] + box["width"] <= width
        )
        assert link.evaluate(CONTRAST) >= 4.5
        address = page.get_by_text("88 Canton Road")
        assert address.is_visible() and address.evaluate(CONTRAST) >= 4.5
    finally:
        page.close()


BACKGROUND = """el => {
  for (let e = el; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    const v = c.match(/[\\d.]+/g).map(Number);
    if (v.length === 3 || v[3] > 0) return c;
  }
  return 'rgb(255, 255, 255)';
}"""


def test_dark_mode_keeps_the_button_the_bands_and_the_hierarchy(browser, built: Path) -> None:  # type: ignore[no-untyped-def]
    """#12: the dark-mode link colour turned the button's white text light blue on red, the
    "View in your browser" strip and the footer stayed light, and kickers, dates and bylines
    all became the same near-white."""
    page = open_offline(browser, built / "daily/2025-05-14/free.html", 600, color_scheme="dark")
    try:
        button = page.get_by_text("Subscribe to read the full story").first
        assert button.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
        assert button.evaluate(BACKGROUND) == "rgb(179, 38, 30)"  # the accent, #b3261e
        assert button.evaluate(CONTRAST) >= 4.5
        dark = "rgb(17, 20, 24)"  # the page's dark background
        assert page.get_by_text("View in your browser").first.evaluate(BACKGROUND) == dark
        assert page.get_by_text("88 Canton Road").evaluate(BACKGROUND) == dark
        colours = {}
        for name, selector in [
            ("kicker", "p.kicker:not(.brand)"),
            ("byline", "p.byline"),
            ("dateline", "p.dateline"),
            ("headline", "h2 a"),
            ("text", ".card:not(.tagline) p:not([class])"),
        ]:
            element = page.locator(selector).first
            assert element.evaluate(CONTRAST) >= 4.5, name
            colours[name] = element.evaluate("e => getComputedStyle(e).color")
        # three tones: the headline and text, the kicker, the muted byline and date
        assert colours["headline"] == colours["text"]
        assert colours["byline"] == colours["dateline"]
        assert len({colours["headline"], colours["kicker"], colours["byline"]}) == 3
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 600])
def test_a_blocked_image_keeps_its_space_with_styled_alt_text(
    browser, built: Path, width: int, scheme: str
) -> None:  # type: ignore[no-untyped-def]
    """#12: with images off, a story image shrank to a broken-image icon and small unstyled
    blue alt text. The helpers above abort every image request, as a mail client with images
    blocked does: the alt text is part of the layout and the block keeps the image's space."""
    page = open_offline(browser, built / "daily/2025-05-14/free.html", width, color_scheme=scheme)
    try:
        image = page.locator("img[alt='Containers stacked at a port']")
        assert image.evaluate("e => e.complete && e.naturalWidth") == 0  # blocked indeed
        style = image.evaluate(
            "e => { const s = getComputedStyle(e); return [s.fontFamily, s.fontSize, s.color,"
            " s.backgroundColor]; }"
        )
        assert style[0].startswith("Arial") and style[1] == "13px"
        assert style[2] == ("rgb(87, 96, 106)" if scheme == "light" else "rgb(164, 173, 184)")
        assert style[3] not in ("rgba(0, 0, 0, 0)", "transparent")
        assert image.evaluate(CONTRAST) >= 4.5
        box = image.bounding_box()
        assert box is not None
        assert box["width"] == width - 48  # the column, less its 24px padding each side
        assert abs(box["height"] - box["width"] * 2 / 3) <= 1  # a 3:2 block, not one line
    finally:
        page.close()
