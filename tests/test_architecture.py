"""Import rules: a fast `--help`, and a core that knows nothing of the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"
HEAVY = [
    "premailer",
    "cssutils",
    "mjml",
    "markdown_it",
    "jinja2",
    "pydantic",
    "feedgen",
    "lxml",
    "yaml",
]

# each third-party library has one owner module (or package)
OWNERS = {
    "click": {"cli"},
    "premailer": {"build.inline"},
    "cssutils": {"build.inline"},
    "mjml": {"build.render"},
    "feedgen": {"build.archive"},
    "markdown_it": {"build.markdown", "build.plaintext"},
    "yaml": {"build.issuefile"},
    "email_validator": {"audience.addresses"},
    # the API client; the webhook's signature helper
    "sendgrid": {"send.backends.sendgrid", "send.backends.sendgrid_webhook"},
    "cryptography": {"send.backends.sendgrid_webhook"},
    "python_http_client": {"send.backends.sendgrid"},
    "itsdangerous": {"audience.tokens"},
}
# a library owned by a package: only modules inside it may import the library
PACKAGE_OWNERS = {
    "sqlalchemy": "store",
    "alembic": "store",
    "psycopg": "store",
    "starlette": "web",
    "uvicorn": "web",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_help_imports_nothing_heavy() -> None:
    code = f"import sys, newsletter.cli\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_the_cli_imports_click_and_nothing_imports_the_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        names = imports_of(path)
        if module not in ("cli", "__main__"):
            assert "newsletter.cli" not in names, path
        for library, owners in OWNERS.items():
            if any(n == library or n.startswith(library + ".") for n in names):
                assert module in owners, f"{path.name} imports {library}, owned by {owners}"
        for library, package in PACKAGE_OWNERS.items():
            if any(n == library or n.startswith(library + ".") for n in names):
                assert package in path.relative_to(PACKAGE).parts[:-1], f"{path} imports {library}"


def test_the_core_never_imports_the_edges() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.stem in ("cli", "__main__") or "web" in path.relative_to(PACKAGE).parts:
            continue
        names = imports_of(path)
        assert not any(n.startswith(("newsletter.cli", "newsletter.web")) for n in names), path
