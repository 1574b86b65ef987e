"""The web versions and the archive page in a real headless Chromium: no horizontal
overflow on a 375 px phone or at 600 px, and no serious or critical axe-core violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, open_offline

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"

PAGES = [
    f"{p.parent.name}/{p.stem}/index.html" for p in sorted((REPO / "issues").glob("*/*.md"))
] + ["index.html"]


@pytest.fixture(scope="module")
def built(sample_build: Path) -> Path:
    return sample_build


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("name", PAGES)
def test_no_horizontal_overflow(browser, built: Path, name: str, width: int) -> None:  # type: ignore[no-untyped-def]
    page = open_offline(browser, built / name, width)
    assert page.evaluate(OVERFLOW) <= 0
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('*')].map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= width
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_no_serious_or_critical_accessibility_violation(browser, built: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    for width, scheme in ((375, "light"), (600, "light"), (600, "dark")):
        page = open_offline(browser, built / name, width)
        page.emulate_media(color_scheme=scheme)
        results = Axe().run(page)
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], (width, scheme)
        page.close()
