"""Our MJML compiler (mjml-python) against the official MJML CLI on the same MJML: the widths
Outlook for Windows uses (`<img width>` and the tables in `<!--[if mso | IE]>` comments) must
be the same, for every template."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from newsletter.build.issuefile import load_issue
from newsletter.build.render import VARIANTS, Renderer, views
from newsletter.workspace import Workspace
from tests.conftest import REPO

MJML_CLI = REPO / "bench" / "node_modules" / ".bin" / "mjml"
MSO = re.compile(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", re.S)
TABLE_WIDTH = re.compile(r'<table\b[^>]*?\swidth="([^"]*)"')
IMG_WIDTH = re.compile(r'<img\b[^>]*?\swidth="([^"]*)"')


@pytest.fixture(scope="module")
def official_mjml() -> Path:
    """The official MJML CLI (`npm ci --prefix bench`, as .ci/run does): skipped with a reason
    where missing, a failure when CI is set."""
    if not os.access(MJML_CLI, os.X_OK):
        reason = f"the official MJML CLI is not at {MJML_CLI} (npm ci --prefix bench)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return MJML_CLI


def outlook_widths(html: str) -> dict[str, list[str]]:
    tables = [w for block in MSO.findall(html) for w in TABLE_WIDTH.findall(block)]
    return {"img": IMG_WIDTH.findall(html), "mso tables": tables}


@pytest.mark.parametrize(
    "issue_file",
    ["daily/2025-05-14.md", "weekly/2025-05-17.md", "green/2025-05-17.md"],
)
@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.web], ids=lambda v: v.name)
def test_outlook_widths_match_the_official_mjml(
    official_mjml: Path, workspace: Path, tmp_path: Path, issue_file: str, variant
) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace(workspace)
    renderer = Renderer(ws.config, ws.templates_dir, ws.display)
    issue, _ = load_issue(workspace / "issues" / issue_file, ws.config)
    template = ws.config.newsletters[issue.newsletter].template
    source = renderer._jinja(
        f"email/{template}.mjml.j2", issue, variant, views(issue, ws.config, variant.tier)
    )
    ours = renderer._mjml(source, issue_file, template)
    (tmp_path / "in.mjml").write_text(source)
    subprocess.run(
        [str(official_mjml), str(tmp_path / "in.mjml"), "-o", str(tmp_path / "out.html")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    theirs = (tmp_path / "out.html").read_text()
    expected = outlook_widths(theirs)
    assert expected["mso tables"]  # the comparison compares something (weekly has no images)
    assert outlook_widths(ours) == expected
    # and premailer, which inlines the CSS afterwards, keeps them (it rewrote width="552" as
    # width="100%" on every <img> a CSS rule matches)
    built = renderer.render(issue).files[f"{variant.name}.html"]
    assert outlook_widths(built) == expected
