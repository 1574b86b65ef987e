"""The environment variables: read in config.py only, secrets stripped and checked at load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from newsletter.audience.tokens import load_secret
from newsletter.config import (
    Config,
    Environment,
    NewsletterConfig,
    Publication,
    SendGridSettings,
    SmtpSettings,
)
from newsletter.errors import ConfigError
from newsletter.send.backends.sendgrid import SendGridBackend
from newsletter.send.backends.smtp import SmtpBackend
from tests.conftest import SENDGRID_KEY
from tests.send.backends.test_sendgrid import send, setup_list
from tests.sendgrid_fake import FakeSendGrid

SECRETS = {
    "NEWSLETTER_SECRET": Environment.secret,
    "NEWSLETTER_SMTP_PASSWORD": Environment.smtp_password,
    "SENDGRID_API_KEY": Environment.sendgrid_api_key,
}


def test_a_key_mounted_from_a_file_reaches_the_backends_without_its_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Keys mounted from files (Docker and Kubernetes secrets) end in a newline; sent as is,
    it breaks the Authorization header or the SMTP login."""
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x\n")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "  hunter2\r\n")
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 40 + "\n")
    assert SendGridBackend(SendGridSettings()).key == "SG.x"
    assert SmtpBackend(SmtpSettings()).password == "hunter2"
    assert load_secret(tmp_path) == "s" * 40


def test_a_send_works_with_a_key_that_ends_in_a_newline(
    sending: Path, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_list(sending, 3)
    monkeypatch.setenv("SENDGRID_API_KEY", SENDGRID_KEY + "\n")
    result = send(sending)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sent"] == 3


@pytest.mark.parametrize("name", sorted(SECRETS))
@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            "SG.q7z\x00w9k",
            "{name} holds a control character (a line break, a tab…): set it again from the "
            "value as the provider shows it",
            id="nul",
        ),
        pytest.param(
            "SG.q7z\nw9k\n",
            "{name} holds a control character (a line break, a tab…): set it again from the "
            "value as the provider shows it",
            id="inner-newline",
        ),
        pytest.param(" \n", "{name} is set but empty: give it a value or unset it", id="blank"),
    ],
)
def test_a_bad_secret_is_an_error_that_names_the_variable_not_the_value(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        SECRETS[name](Environment({name: value}))
    assert str(caught.value) == message.format(name=name)
    assert "q7z" not in str(caught.value) and "w9k" not in str(caught.value)


def test_the_cli_says_which_variable_is_wrong_and_never_shows_it(
    sending: Path, fake_sendgrid: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_list(sending, 1)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.sec\x07ret-value")
    result = send(sending)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: SENDGRID_API_KEY holds a control character (a line break, a tab…): set it "
        "again from the value as the provider shows it\n"
    )
    assert "ret-value" not in result.output


def test_unset_variables_are_none_and_plain_values_are_stripped() -> None:
    env = Environment(
        {"SENDGRID_API_HOST": " http://127.0.0.1:9/\n", "NEWSLETTER_DATABASE_URL": ""}
    )
    assert env.sendgrid_api_host() == "http://127.0.0.1:9/"
    assert env.database_url() is None
    assert env.secret() is None and env.sendgrid_webhook_verification_key() is None
    key = Environment({"SENDGRID_API_KEY": "SG.abc"}).sendgrid_api_key()
    assert key is not None and key.get_secret_value() == "SG.abc" and "SG.abc" not in repr(key)


# a section left out of newsletter.toml (#16)


def section_defaults() -> list[tuple[str, type[BaseModel], Any]]:
    """Every section default made by `model_construct`: (field, section, the factory)."""
    found = []
    for model in (Config, Publication, NewsletterConfig):
        for name, info in model.model_fields.items():
            factory = info.default_factory
            section = getattr(factory, "__self__", None)
            if isinstance(section, type) and issubclass(section, BaseModel):
                found.append((f"{model.__name__}.{name}", section, factory))
    return found


def test_a_section_left_out_is_exactly_its_defaults() -> None:
    """The default is what `Section()` would give: same values, nothing marked as set, and no
    model validator skipped (model_construct runs none)."""
    found = section_defaults()
    assert {name for name, _, _ in found} >= {
        "Config.smtp",
        "Config.sendgrid",
        "Config.serve",
        "Config.bounces",
        "Publication.colors",
        "NewsletterConfig.utm",
    }
    for name, section, factory in found:
        made, validated = factory(), section()
        assert made == validated, name
        assert made.model_dump() == validated.model_dump(), name
        assert made.model_fields_set == validated.model_fields_set == set(), name
        assert not section.__pydantic_decorators__.model_validators, name


def test_importing_the_config_builds_no_validator() -> None:
    """Sections are built when a config is first validated, once, inside the Config: a
    default made at import time built six validators and looked up pydantic's plugins."""
    code = (
        "import sys\n"
        "from newsletter import config\n"
        "sections = [config.Colors, config.Utm, config.SmtpSettings, config.SendGridSettings,\n"
        "            config.ServeSettings, config.BouncesSettings, config.Config]\n"
        "print([s.__name__ for s in sections if s.__pydantic_complete__])\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "False"]
