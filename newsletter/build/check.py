"""`newsletter check`: every problem in every issue file, the config and the templates at once.

Checking renders each issue (in memory) so that template and MJML errors, paywall leaks
and oversized emails are found before anything is written or sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from newsletter.build.catalog import Catalog
from newsletter.build.render import RenderedIssue, Renderer
from newsletter.errors import ConfigError, ConfigProblems, RenderError
from newsletter.problems import Problems
from newsletter.workspace import Workspace

Progress = Callable[[Path], None]


def render_all(
    catalog: Catalog,
    renderer: Renderer,
    files: list[Path],
    problems: Problems,
    on_progress: Progress | None = None,
) -> list[RenderedIssue]:
    """Load, collect and render each file; problems go into `problems`."""
    rendered = []
    for path in files:
        issue, found = catalog.load(path)
        problems.extend(found)
        if issue is not None:
            issue = catalog.complete(issue, problems)
            try:
                result = renderer.render(issue)
            except RenderError as exc:
                problems.extend([exc.problem])
            else:
                problems.extend(result.problems)
                rendered.append(result)
        if on_progress:
            on_progress(path)
    return rendered


def config_problems(exc: ConfigError) -> Problems:
    problems = Problems()
    if isinstance(exc, ConfigProblems):
        problems.extend(exc.problems)
    else:
        problems.error(str(exc.path or "newsletter.toml"), exc.line, exc.message)
    return problems


def check(workspace: Workspace, paths: list[Path] | None = None, links: bool = False) -> Problems:
    try:
        config = workspace.config
    except ConfigError as exc:
        return config_problems(exc)
    catalog = Catalog(workspace)
    renderer = Renderer(config, workspace.templates_dir, workspace.display)
    problems = Problems()
    files = workspace.issue_files(paths)
    rendered = render_all(catalog, renderer, files, problems)
    if links:
        from newsletter.build.links import check_links

        problems.extend(check_links([r.issue for r in rendered], workspace.display))
    return problems
