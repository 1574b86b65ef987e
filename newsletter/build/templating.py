"""The Jinja environment: the workspace's templates/ first, then the package defaults.

A publication overrides one file (say `email/partials/header.mjml.j2`) by putting its own
in templates/; an override can extend the default it replaces as `default/<name>`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from newsletter.problems import Problem

PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"


def environment(workspace_templates: Path | None) -> jinja2.Environment:
    package = jinja2.FileSystemLoader(PACKAGE_TEMPLATES)
    loaders: list[jinja2.BaseLoader] = []
    if workspace_templates is not None and workspace_templates.is_dir():
        loaders.append(jinja2.FileSystemLoader(workspace_templates))
    loaders += [package, jinja2.PrefixLoader({"default": package})]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["longdate"] = longdate
    return env


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes, as Python keeps its .pyc files: a fresh
    `newsletter build` spent 50 ms compiling the same templates every time (#16). Each entry
    is keyed by the template's path and checked against a checksum of its source, so an
    edited template is compiled again. A cache that cannot be written is no error."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    # Jinja's own per-user folder in the temporary directory, which it creates private
    # (0700) and refuses if anyone else owns it
    try:
        return _BytecodeCache()
    except (OSError, RuntimeError):
        return None


def longdate(value: dt.date) -> str:
    """'Wednesday 14 May 2025': the same in every locale, so builds are reproducible."""
    return f"{value:%A} {value.day} {value:%B %Y}"


def template_files(workspace_templates: Path | None) -> list[Path]:
    """Every template file the build may read, for the incremental-build hash."""
    roots = [PACKAGE_TEMPLATES] + ([workspace_templates] if workspace_templates else [])
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file())


def problem_from(exc: BaseException, display: Any) -> Problem:
    """A Jinja error → a Problem naming the template and its line."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        source = exc.filename or exc.name or "<template>"
        return Problem(display(Path(source)), exc.lineno, "error", f"template error: {exc.message}")
    if isinstance(exc, jinja2.TemplateNotFound):
        return Problem("templates", None, "error", f"template not found: {exc.name}")
    # runtime errors: the innermost frame that belongs to a template has its file and line
    tb = exc.__traceback__
    where, line = None, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith(".j2"):
            where, line = name, tb.tb_lineno
        tb = tb.tb_next
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, RecursionError):  # an include/extends of itself, a recursive macro
        message = "the template includes, extends or calls itself without end"
    path = display(Path(where)) if where else "templates"
    return Problem(path, line, "error", f"template error: {message}")
