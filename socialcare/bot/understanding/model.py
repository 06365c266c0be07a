"""What the team tells the matcher to look for, and what it reads in a mention."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

_STRICT = {"extra": "forbid"}


class Language(StrEnum):
    """The language a mention is written in, as far as the team answers in it."""

    RU = "ru"
    KK = "kk"
    EN = "en"
    OTHER = "other"


@dataclass(frozen=True)
class Brand:
    """A brand whose mentions the team answers.

    A keyword matches in its word forms (see `forms`); one written "=Kcell" matches
    only as written, and one ending in "*" matches any word it starts.
    """

    __pydantic_config__ = _STRICT

    name: str
    keywords: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    # The brand's own accounts per platform (handles or ids): their posts are answers,
    # and a mention that tags one with "@" is a mention of the brand.
    accounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("name: a brand needs a name")
        if not any(k.strip() for k in self.keywords):
            raise ValueError("keywords: at least one keyword is needed")

    @property
    def search_terms(self) -> tuple[str, ...]:
        """Return the keywords as a platform's search takes them (no "=" or "*")."""
        terms = (k.strip().lstrip("=").rstrip("*").strip() for k in self.keywords)
        return tuple(dict.fromkeys(t for t in terms if t))


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def _check_name(name: str, what: str) -> None:
    if not name or not set(name) <= _NAME_CHARS or len(name) > 40:
        raise ValueError(f"name: {name!r} — a {what} name is 1-40 of a-z, 0-9, _ and -")


@dataclass(frozen=True)
class Topic:
    """A contact reason: what a mention is about ("billing", "roaming")."""

    __pydantic_config__ = _STRICT

    name: str
    title: str
    keywords: tuple[str, ...]
    # The second-line team a case of this topic usually goes to.
    second_line: str | None = None
    # The directors' responsibility area (escalations and incidents).
    area: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "topic")
        if not any(k.strip() for k in self.keywords):
            raise ValueError("keywords: at least one keyword is needed")


@dataclass(frozen=True)
class Place:
    """A place customers name: a city, in every spelling and language people use."""

    __pydantic_config__ = _STRICT

    name: str
    title: str
    keywords: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_name(self.name, "place")
        if not any(k.strip() for k in self.keywords):
            raise ValueError("keywords: at least one spelling is needed")


@dataclass(frozen=True)
class Reading:
    """What the matcher read in a text: the brand it is about (the one named first),
    its language, whether it is urgent, its topics and places (in the config's order)."""

    brand: Brand | None = None
    language: Language | None = None  # None: not asked for
    urgent: bool = False
    topics: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
