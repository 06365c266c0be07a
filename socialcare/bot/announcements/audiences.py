"""Audiences: who an announcement reaches beyond the social team, as the config names them.

An audience (`call_centre`, `shops`, `email_support`) is reached in its Slack channels
and Telegram chats, by e-mail and/or by a signed webhook (a knowledge base, a CRM).
Its `members` are who should read it: they press **Got it** without being in the
roster and without a role. The team's own channels are the audience `team`, whose
members are the people who work cases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_STRICT = {"extra": "forbid"}
TEAM = "team"  # the team's own [[channels]] and its roster
ALL = "all"  # every audience of the config, and the team
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# An address, not a header: no spaces, separators or angle brackets that could add
# another recipient or a header line.
_EMAIL = re.compile(r"^[^\s@,;<>\"()\\]+@[^\s@,;<>\"()\\]+\.[^\s@,;<>\"()\\]+$")


@dataclass(frozen=True)
class Member:
    """Someone an audience's announcements are for, known by their messenger ids."""

    __pydantic_config__ = _STRICT

    name: str
    slack: str | None = None
    telegram: int | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("name: a member needs a name")
        if self.slack is None and self.telegram is None:
            raise ValueError("slack, telegram: at least one user id is needed")

    def known_as(self, messenger: str, user_id: str) -> bool:
        """Tell whether this member is the user `user_id` of a messenger."""
        if messenger == "slack":
            return self.slack is not None and self.slack == user_id
        return self.telegram is not None and str(self.telegram) == user_id


@dataclass(frozen=True)
class AudienceChannel:
    """A Slack channel or Telegram chat of an audience."""

    __pydantic_config__ = _STRICT

    messenger: Literal["slack", "telegram"]
    id: str
    name: str | None = None


@dataclass(frozen=True)
class Audience:
    """A service channel announcements reach: its chats, e-mail addresses, webhook."""

    __pydantic_config__ = _STRICT

    name: str
    title: str | None = None
    channels: tuple[AudienceChannel, ...] = ()
    emails: tuple[str, ...] = ()
    # A knowledge base or CRM: each announcement (and its correction or withdrawal)
    # is POSTed there as JSON signed with ANNOUNCEMENT_WEBHOOK_SECRET.
    webhook_url: str | None = None
    members: tuple[Member, ...] = ()

    def __post_init__(self) -> None:
        if NAME.fullmatch(self.name) is None:
            raise ValueError(f"name: {self.name!r} is not like 'call_centre' (lower-case "
                             "letters, digits, _ and -)")
        if self.name in (TEAM, ALL):
            raise ValueError(f"name: {self.name!r} is reserved (/announce {self.name} …)")
        if not self.channels and not self.emails and not self.webhook_url:
            raise ValueError("channels, emails, webhook_url: an audience needs at least one")
        for address in self.emails:
            if _EMAIL.fullmatch(address) is None:
                raise ValueError(f"emails: {address!r} is not an e-mail address")
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("webhook_url: must be an http(s) URL")

    @property
    def label(self) -> str:
        """Return how the audience is shown: its title, else its name."""
        return self.title or self.name
