"""The built email and pages in a real headless Chromium: layout at phone and desktop widths,
and accessibility by axe-core."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.build.pipeline import build
from newsletter.workspace import Workspace

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("ws")
    shutil.copy(REPO / "newsletter.toml", root)
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    assert build(Workspace(root)).ok
    return root / "build"


def _open(browser, path: Path, width: int):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": width, "height": 800})
    # images point at the publication's server, which the tests never reach
    page.route(
        "**/*",
        lambda route: (
            route.abort() if not route.request.url.startswith("file:") else route.continue_()
        ),
    )
    page.goto(path.as_uri())
    return page


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
    page = _open(browser, built / name, 375)
    assert page.evaluate(OVERFLOW) <= 0
    # and the story column really uses the phone's width rather than a fixed 600px
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('h2')].map(e => e.getBoundingClientRect().right))"
    )
    assert 200 < widest <= 375
    page.close()


def test_desktop_width_keeps_a_600px_column(browser, built: Path) -> None:  # type: ignore[no-untyped-def]
    page = _open(browser, built / "daily/2025-05-14/free.html", 800)
    assert page.evaluate(OVERFLOW) <= 0
    width = page.evaluate(
        "document.querySelector('h1').closest('div[style*=\"max-width:600px\"]').getBoundingClientRect().width"
    )
    assert width == 600
    page.close()
    page = _open(browser, built / "daily/2025-05-14/free.html", 600)
    assert page.evaluate(OVERFLOW) <= 0
    page.close()


@pytest.mark.parametrize(
    "name", ["daily/2025-05-14/free.html", "daily/2025-05-14/premium.html", "index.html"]
)
def test_no_serious_or_critical_accessibility_violation(browser, built: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    page = _open(browser, built / name, 600)
    results = Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    page.close()
