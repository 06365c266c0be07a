"""The message catalog: every text the bot shows, in the team's language.

Texts live in `socialcare/locales/<language>.toml`, one file per language, keyed
like `card.state.new`. A translator adds a language by adding a file; the code never
changes. A key missing from a translation falls back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any


class MissingText(KeyError):
    """No catalog has this key: a bug, caught by the catalog tests."""


class Catalog:
    """Look texts up by key and fill in their `{placeholders}`."""

    def __init__(
        self, language: str, texts: Mapping[str, str], fallback: Mapping[str, str] | None = None
    ) -> None:
        self.language = language
        self._texts = dict(texts)
        self._fallback = dict(fallback or {})

    def __call__(self, key: str, **params: Any) -> str:
        """Return the text for `key` with its placeholders filled."""
        template = self._texts.get(key) or self._fallback.get(key)
        if template is None:
            raise MissingText(key)
        return template.format_map(params) if params else template

    def has(self, key: str) -> bool:
        """Tell whether the catalog (or its fallback) has this key."""
        return key in self._texts or key in self._fallback

    def keys(self) -> set[str]:
        """Return the keys this language defines itself."""
        return set(self._texts)


def placeholders(template: str) -> set[str]:
    """Return the names of a template's placeholders."""
    return {name for _, name, _, _ in Formatter().parse(template) if name}
