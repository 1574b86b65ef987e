"""Generate a workspace of many daily issues (12 stories each) from the sample's stories.

Deterministic: the same arguments give the same files. Usage:
    python bench/gen_archive.py DIR [--issues 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def sample_stories() -> list[dict]:
    stories = []
    for path in sorted((REPO / "issues/daily").glob("*.md")):
        front = path.read_text(encoding="utf-8").split("---\n")[1]
        stories += yaml.safe_load(front)["articles"]
    return stories


def make_workspace(
    target: Path, issues: int, stories_per_issue: int = 12, seed: int = 2025
) -> list[Path]:
    """A workspace with `issues` dailies ending 2025-05-16, plus the sample's weekly config."""
    if target.exists():
        shutil.rmtree(target)
    (target / "issues/daily").mkdir(parents=True)
    shutil.copy(REPO / "newsletter.toml", target)
    shutil.copytree(REPO / "templates", target / "templates")
    rng = random.Random(seed)
    pool = sample_stories()
    last = dt.date(2025, 5, 16)
    paths = []
    for n in range(issues):
        date = last - dt.timedelta(days=issues - 1 - n)
        picked = rng.sample(pool, k=min(stories_per_issue, len(pool)))
        articles = []
        for i, story in enumerate(picked):
            story = dict(story)
            story["url"] = f"{story['url'].rsplit('/', 1)[0]}/{date.isoformat()}-{i}"
            story.pop("published", None)
            articles.append(story)
        front = {
            "newsletter": "daily",
            "date": date.isoformat(),
            "status": "ready",
            "subject": f"The Daily Brief for {date:%A %d %B %Y}",
            "preheader": picked[0]["title"],
            "articles": articles,
        }
        path = target / "issues/daily" / f"{date.isoformat()}.md"
        path.write_text(
            "---\n"
            + yaml.safe_dump(front, allow_unicode=True, sort_keys=False, width=88)
            + "---\nGood morning. Here is the news.\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--issues", type=int, default=1000)
    args = parser.parse_args()
    make_workspace(args.dir, args.issues)
    print(f"wrote {args.issues} issues to {args.dir}")
