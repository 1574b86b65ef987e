"""The README documents every command, every config key and every placeholder."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from newsletter import placeholders
from newsletter.cli import cli
from newsletter.config import Collect, Colors, NewsletterConfig, Publication, Utm

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_command_has_help_and_is_in_the_readme() -> None:
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"`newsletter {name}" in README, name


def test_every_config_key_is_in_the_readme() -> None:
    models: list[type[BaseModel]] = [Publication, Colors, NewsletterConfig, Utm, Collect]
    for model in models:
        for name, field in model.model_fields.items():
            key = field.alias or name
            assert f"\n{key} = " in README or f".{key}]" in README, f"{model.__name__}.{key}"


def test_every_placeholder_is_in_the_readme() -> None:
    for name in placeholders.NAMES:
        assert f"`%%{name}%%`" in README
