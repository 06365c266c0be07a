"""Message catalogs: every shipped language is complete, and the texts fit the platforms."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from socialcare.bot.catalog import Catalog, MissingText, placeholders
from socialcare.settings import LOCALES, ConfigError, _flatten, languages, load_catalog, load_team
from tests.conftest import ROOT

EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
ENGLISH = _flatten(tomllib.loads((LOCALES / "en.toml").read_text(encoding="utf-8")))
LANGUAGES = sorted(languages())

# Slack: modal title/submit/close ≤ 24, button text ≤ 75; Telegram: command description 3–256.
MODAL_LIMIT = 24
BUTTON_LIMIT = 75
LONGEST_ID = 99999


def _own_texts(language: str) -> dict[str, str]:
    """The texts a language's file defines itself, without the English fallback."""
    return _flatten(tomllib.loads((LOCALES / f"{language}.toml").read_text(encoding="utf-8")))


def test_english_and_russian_are_shipped() -> None:
    assert {"en", "ru"} <= languages()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_shipped_language_has_every_english_key_with_the_same_placeholders(
    language: str,
) -> None:
    catalog = load_catalog(language)
    own = _own_texts(language)

    assert catalog.language == language
    assert sorted(set(ENGLISH) - catalog.keys()) == []
    for key, english in ENGLISH.items():
        assert placeholders(own[key]) == placeholders(english), key
        assert own[key].strip(), f"{key} is empty"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_language_has_keys_that_english_lacks(language: str) -> None:
    assert sorted(set(_own_texts(language)) - set(ENGLISH)) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_fills_in_without_error(language: str) -> None:
    catalog = load_catalog(language)
    for key in ENGLISH:
        params = {name: "x" for name in placeholders(ENGLISH[key])}
        assert catalog(key, **params), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_slack_reply_window_texts_fit_in_24_characters(language: str) -> None:
    catalog = load_catalog(language)

    for text in (catalog("reply.title", id=LONGEST_ID), catalog("reply.submit"),
                 catalog("reply.cancel")):
        assert len(text) <= MODAL_LIMIT, text


@pytest.mark.parametrize("language", LANGUAGES)
def test_button_texts_fit_in_a_slack_button(language: str) -> None:
    catalog = load_catalog(language)
    buttons = [key for key in ENGLISH if key.startswith("button.")]

    assert buttons
    for key in buttons:
        assert len(catalog(key)) <= BUTTON_LIMIT, key


@pytest.mark.parametrize("language", LANGUAGES)
def test_telegram_command_descriptions_are_3_to_256_characters(language: str) -> None:
    catalog = load_catalog(language)
    commands = [key for key in ENGLISH if key.startswith("telegram.command.")]

    assert commands
    for key in commands:
        assert 3 <= len(catalog(key)) <= 256, key


def test_a_config_whose_language_has_no_catalog_is_refused_naming_the_choices(
    tmp_path: Path,
) -> None:
    old = 'language = "en"'
    assert old in EXAMPLE
    path = tmp_path / "klingon.toml"
    path.write_text(EXAMPLE.replace(old, 'language = "tlh"', 1), encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_team(path)

    message = str(error.value)
    assert message.startswith(f"{path}: language: ")
    assert "'tlh'" in message
    assert f"available: {', '.join(LANGUAGES)}" in message
    assert "\n" not in message


def test_a_key_no_catalog_has_raises_missing_text() -> None:
    catalog = Catalog("ru", {"button.claim": "Взять"}, fallback={"button.claim": "Claim"})

    assert not catalog.has("button.nope")
    with pytest.raises(MissingText, match=r"button\.nope"):
        catalog("button.nope")


def test_a_key_a_translation_lacks_falls_back_to_english() -> None:
    catalog = Catalog(
        "ru", {"button.claim": "Взять в работу"},
        fallback={"button.claim": "Claim", "reply.title": "Reply to #{id}"},
    )

    assert catalog("button.claim") == "Взять в работу"
    assert catalog.has("reply.title")
    assert catalog("reply.title", id=7) == "Reply to #7"
    assert catalog.keys() == {"button.claim"}
