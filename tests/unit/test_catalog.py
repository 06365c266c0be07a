"""Message catalogs: every shipped language is complete, and the texts fit the platforms."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

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


# Words that stay as they are in every language: names of products, platforms, units.
NAMES = {"socialcare", "Instagram", "Facebook", "VK", "YouTube", "X", "Telegram", "TikTok",
         "Slack", "SLA", "CSV", "Markdown", "ID"}
# A catalog lookup in the code or a template: t('key'), text("key"), catalog(f"key.{…}").
LOOKUP = re.compile(r"""(?:\bt|\btext|catalog|\b_t)(?:\.has)?\(\s*f?(["'])([a-z_]+\.[^"'\s]+)\1""")
SOURCES = sorted([*(ROOT / "socialcare").rglob("*.py"), *(ROOT / "socialcare").rglob("*.html")])


def _words(text: str) -> list[str]:
    """Return the words of a text that a translator would translate."""
    bare = re.sub(r"\{[^}]*\}|https?://\S+|/\w+", " ", text)
    return [w for w in re.findall(r"[^\W\d_]+", bare) if w not in NAMES]


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


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_no_text_is_left_in_english(language: str) -> None:
    own = _own_texts(language)

    # The same as English is right only for a text with nothing to translate (a title
    # of placeholders, an icon, a platform's name).
    untranslated = sorted(key for key, english in ENGLISH.items()
                          if own.get(key) == english and _words(english))
    assert untranslated == []


def test_every_key_the_code_and_the_templates_look_up_is_in_the_catalog() -> None:
    lookups = [(path.relative_to(ROOT), key) for path in SOURCES
               for _quote, key in LOOKUP.findall(path.read_text(encoding="utf-8"))]
    missing = []
    for path, key in lookups:
        # f"state.{…}" and 'console.role.' ~ role: some key must start so.
        prefix = key.split("{", 1)[0] if "{" in key else key if key.endswith(".") else None
        if prefix is not None and not any(k.startswith(prefix) for k in ENGLISH):
            missing.append(f"{path}: {key}")
        if prefix is None and key not in ENGLISH:
            missing.append(f"{path}: {key}")

    assert len(lookups) > 200  # the pattern still finds the lookups
    assert missing == []


def _calls_with_a_literal_key() -> Iterator[tuple[str, str, set[str] | None]]:
    """Yield (where, key, the placeholders it is given; None: some come as **kwargs)."""
    names = {"t", "text", "catalog", "_catalog"}
    for path in SOURCES:
        source = path.read_text(encoding="utf-8")
        where = str(path.relative_to(ROOT))
        if path.suffix == ".py":
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else \
                    func.attr if isinstance(func, ast.Attribute) else None
                key = node.args[0]
                if name in names and isinstance(key, ast.Constant) and \
                        isinstance(key.value, str) and key.value in ENGLISH:
                    given = {k.arg for k in node.keywords}
                    yield f"{where}:{node.lineno}", key.value, \
                        None if None in given else {g for g in given if g}
        else:
            for call in jinja2.Environment().parse(source).find_all(nodes.Call):
                if isinstance(call.node, nodes.Name) and call.node.name == "t" and \
                        call.args and isinstance(call.args[0], nodes.Const):
                    yield f"{where}:{call.lineno}", call.args[0].value, \
                        None if call.dyn_kwargs else {k.key for k in call.kwargs}


def test_every_lookup_gives_each_placeholder_its_text_needs() -> None:
    calls = list(_calls_with_a_literal_key())
    # A lookup given nothing hands the template on as it is (the browser fills it in).
    short = [f"{where}: {key} lacks {sorted(placeholders(ENGLISH[key]) - given)}"
             for where, key, given in calls
             if given and placeholders(ENGLISH[key]) - given]

    assert len(calls) > 200
    assert short == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_columns_of_a_table_have_different_headers(language: str) -> None:
    catalog = load_catalog(language)
    tables = {
        "reports": ["console.reports.cases", "console.reports.median", "console.reports.within",
                    "console.reports.met", "console.reports.missed", "console.reports.pending",
                    "console.reports.dismissed"],
        "wallboard": [k for k in ENGLISH if k.startswith("console.board.col_")],
        "events": ["console.case.when", "console.case.who", "console.case.what"],
    }
    for name, keys in tables.items():
        headers = [catalog(key) for key in keys]
        assert len(set(headers)) == len(headers), (name, headers)


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
