"""Import rules: a fast `--help`, a core that knows nothing of the CLI or the web, layers that
import only downwards, and module names that say which module they are."""

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
    "sqlalchemy",
    "starlette",
    "sendgrid",
    "orjson",
    "uvicorn",
    "dkim",
    "dns",
    "dnslib",
    "cryptography",
    "feedparser",
    "httpx",
    "markdownify",
    "bs4",
    "flufl",  # #14: bounce detectors, only when a bounce mailbox is read
    "matplotlib",
]
# base modules: everything else builds on them, and they import nothing above them
BASE = {"errors", "problems", "model", "config", "workspace", "placeholders"}
ABOVE_BASE = ("build", "audience", "send", "reports", "store", "web")

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
    # the webhook's signature helper (Mail Send is posted with urllib: send.backends.sendgrid)
    "sendgrid": {"send.backends.sendgrid_webhook"},
    "orjson": {"send.backends.sendgrid"},  # the Mail Send bodies
    "cryptography": {"send.backends.sendgrid_webhook", "send.dkim"},
    "dkim": {"send.dkim"},  # dkimpy
    "dns": {"send.doctor"},  # dnspython
    "itsdangerous": {"audience.tokens"},
    "feedparser": {"build.feed"},
    "httpx": {"build.feed"},
    "markdownify": {"build.draft"},
    "bs4": {"build.draft"},
    "flufl": {"audience.bounces"},  # #14: flufl.bounce's detectors
    "matplotlib": {"reports.charts"},  # the report's charts, SVG
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
    """Every module `path` imports, at the top or inside a function; `from a import b` counts
    as `a` and `a.b`, so that `from newsletter import web` is seen as newsletter.web."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules() -> list[tuple[str, Path]]:
    """(dotted name inside the package, path) of every module."""
    return [
        (".".join(path.relative_to(PACKAGE).with_suffix("").parts), path)
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def importing(names: set[str], packages: tuple[str, ...]) -> set[str]:
    """Which of `packages` (newsletter.<package> or a module inside it) `names` import."""
    return {
        package
        for n in names
        for package in packages
        if n == f"newsletter.{package}" or n.startswith(f"newsletter.{package}.")
    }


def test_help_imports_nothing_heavy() -> None:
    """`newsletter --help` stays fast: the CLI imports its libraries inside the commands."""
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
    """build/, audience/, send/, store/ and the base modules know nothing of cli or web."""
    checked = set()
    for module, path in modules():
        if module in ("cli", "__main__") or module.split(".")[0] == "web":
            continue
        checked.add(module.split(".")[0])
        names = imports_of(path)
        assert not any(n.startswith(("newsletter.cli", "newsletter.web")) for n in names), path
    assert {"build", "audience", "send", "store"} | BASE <= checked


def test_layers_import_only_downwards() -> None:
    """Base modules import nothing above them; store/ (its migrations too) only base modules;
    build/ and audience/ never import send/ or reports/."""
    found = set()
    for module, path in modules():
        top = module.split(".")[0]
        if top in BASE:
            above = ABOVE_BASE
        elif top == "store":
            above = ("build", "audience", "send", "reports", "web")
        elif top in ("build", "audience"):
            above = ("send", "reports")
        else:
            continue
        found |= {(module, package) for package in importing(imports_of(path), above)}
    assert found == set()


def test_no_module_name_exists_twice() -> None:
    """A name says which module it is: two `events.py` make every traceback and every
    `grep` ambiguous."""
    seen: dict[str, list[str]] = {}
    for module, path in modules():
        if path.stem not in ("__init__", "__main__"):
            seen.setdefault(path.stem, []).append(module)
    twice = {stem: where for stem, where in seen.items() if len(where) > 1}
    assert twice == {}
