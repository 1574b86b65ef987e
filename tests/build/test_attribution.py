"""Each story's key in the manifest: its explicit `id`, else its URL without UTM parameters;
two stories may not share an id."""

from __future__ import annotations

import json
from pathlib import Path

from newsletter.build.attribution import normalise, records
from newsletter.build.issuefile import load_issue
from newsletter.build.pipeline import build
from newsletter.workspace import Workspace
from tests.build.test_issuefile import GOOD, PATH, problems_for


def test_a_story_is_keyed_by_its_id_or_else_its_url(ws: Workspace) -> None:
    path = ws.root / PATH
    path.write_text(
        GOOD.replace(
            "url: https://news.example.com/a\n", "url: https://news.example.com/a\n    id: lead\n"
        )
    )
    issue, problems = load_issue(path, ws.config)
    assert issue is not None and not problems.has_errors
    assert [(r.key, r.position, r.paywalled) for r in records(issue)] == [
        ("lead", 1, True),
        (normalise("https://news.example.com/b"), 2, False),
    ]


def test_two_stories_with_one_id_is_an_error(ws: Workspace) -> None:
    text = GOOD.replace(
        "    url: https://news.example.com/", "    id: same\n    url: https://news.example.com/"
    )
    assert f"{PATH}:19: error: articles[1]: the id 'same' is already used by articles[0]" in (
        problems_for(ws, text)
    )


def test_the_manifest_records_the_stories_in_order(workspace: Path) -> None:
    report = build(Workspace(workspace), [workspace / "issues/daily/2025-05-14.md"])
    assert report.ok
    manifest = json.loads((workspace / "build/daily/2025-05-14/manifest.json").read_text())
    stories = manifest["articles"]
    assert len(stories) == manifest["article_count"] == 9
    assert stories[0]["key"] == (
        "https://news.harbourledger.example/2025-05-14/export-credit-insurance"
    )
    assert stories[0]["section"] and stories[0]["paywalled"] is True
    assert [s["position"] for s in stories] == list(range(1, 10))
