"""The README documents every command, every config key and every placeholder."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from newsletter import placeholders
from newsletter.cli import cli
from newsletter.config import (
    BouncesSettings,
    Collect,
    Colors,
    Config,
    DkimSettings,
    FeedSettings,
    NewsletterConfig,
    Publication,
    SendGridSettings,
    ServeSettings,
    SmtpSettings,
    Utm,
)

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_command_has_help_and_is_in_the_readme() -> None:
    import click

    for name, command in cli.commands.items():
        assert command.help, name
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                assert subcommand.help, f"{name} {sub}"
                assert f"`newsletter {name} {sub}" in README, f"{name} {sub}"
        else:
            assert f"`newsletter {name}" in README, name


def test_every_config_key_is_in_the_readme() -> None:
    models: list[type[BaseModel]] = [
        Config,
        Publication,
        Colors,
        NewsletterConfig,
        FeedSettings,
        Utm,
        Collect,
        SmtpSettings,
        SendGridSettings,
        ServeSettings,
        DkimSettings,
        BouncesSettings,
    ]
    for model in models:
        for name, field in model.model_fields.items():
            key = field.alias or name
            documented = (f"\n{key} = ", f".{key}]", f"[{key}]", f"[{key}.")
            assert any(d in README for d in documented), f"{model.__name__}.{key}"


def test_every_placeholder_is_in_the_readme() -> None:
    for name in placeholders.NAMES:
        assert f"`%%{name}%%`" in README


def test_the_readme_map_names_every_module() -> None:
    """ "How the code is laid out" is the newcomer's map: a module missing from it is a room
    nobody finds."""
    package = Path(__file__).resolve().parent.parent / "newsletter"
    section = README.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    modules = {
        p.stem
        for p in package.rglob("*.py")
        if p.stem not in ("__init__", "__main__") and "migrations" not in p.parts
    }
    packages = {p.parent.name for p in package.rglob("__init__.py") if p.parent != package}
    named = set(re.findall(r"`([a-z_]+)/?`", section))
    assert modules - named == set(), "modules missing from the README's map"
    assert {p for p in packages if p != "migrations"} - named == set()
