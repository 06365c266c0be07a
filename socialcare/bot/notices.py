"""Notices: direct messages to a person, stored with the change that causes them.

A notice is written in the same transaction as the change it tells about (an
escalation acknowledged, a case handed back), one per messenger that knows the
person; the dispatcher sends it later, in the team's language. A restart loses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from socialcare.bot.team import Person


@dataclass
class Notice:
    """One direct message to one person in one messenger."""

    messenger: str
    recipient: str  # the person's user id in that messenger
    key: str  # catalog key of the text
    params: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    id: int | None = None


def notices_for(person: Person, key: str, **params: Any) -> list[Notice]:
    """Return the notices that tell a person something, in every messenger that knows them."""
    addresses = [("slack", person.slack), ("telegram", person.telegram)]
    return [
        Notice(messenger=messenger, recipient=str(address), key=key, params=dict(params))
        for messenger, address in addresses if address is not None
    ]
