"""An announcement, its copies (one per place it goes), its receipts and its events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AnnouncementState(StrEnum):
    """Where an announcement stands: in force, taken back, or past its `until` time."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass
class Announcement:
    """A notice to the team and to other service channels, and the answer it gives.

    `revision` grows with every change its copies must show (a correction, the
    withdrawal, the expiry); a copy is in step when it has sent that revision.
    `version` guards concurrent changes, as a case's does.
    """

    text: str
    author: str  # the roster id of who announced it
    created_at: datetime
    audiences: tuple[str, ...]  # "team" first, then the config's audience names
    keywords: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    until: datetime | None = None
    state: AnnouncementState = AnnouncementState.ACTIVE
    revision: int = 1
    corrected_at: datetime | None = None
    ended_at: datetime | None = None  # withdrawn or expired
    ended_by: str | None = None
    reminded_at: datetime | None = None
    version: int = 0
    id: int | None = None

    def in_force(self, now: datetime) -> bool:
        """Tell whether the announcement holds at `now`."""
        return self.state is AnnouncementState.ACTIVE and (self.until is None or now < self.until)


class Outlet(StrEnum):
    """How a copy reaches its place; the values are stored."""

    SLACK = "slack"
    TELEGRAM = "telegram"
    EMAIL = "email"
    WEBHOOK = "webhook"

    @property
    def is_chat(self) -> bool:
        """Tell whether copies of this outlet are chat messages (pinned, with Got it)."""
        return self in (Outlet.SLACK, Outlet.TELEGRAM)


@dataclass
class Copy:
    """An announcement in one place: a chat message, a mailbox, a webhook.

    The copy is due while `next_try_at` has come; the deliverer takes it under a lease
    (`leased_until`), brings it to the announcement's revision, and records how far it
    got — so a restart loses nothing and two processes never send it twice.
    """

    announcement_id: int
    audience: str
    outlet: Outlet
    address: str  # channel id, e-mail address or URL
    next_try_at: datetime | None
    message_id: str | None = None
    pinned: bool = False
    revision_sent: int = 0
    attempts: int = 0  # failed attempts in a row
    last_error: str | None = None
    delivered_at: datetime | None = None  # when it first reached its place
    gave_up_at: datetime | None = None
    posting_since: datetime | None = None  # a chat post whose outcome may be unknown
    leased_until: datetime | None = None
    changes: int = 0  # grows each time a change of the announcement makes the copy due
    id: int | None = None


@dataclass(frozen=True)
class Receipt:
    """Someone pressed Got it on a chat copy."""

    announcement_id: int
    messenger: str
    user_id: str
    name: str
    channel: str
    at: datetime


@dataclass(frozen=True)
class AnnouncementEvent:
    """One change of an announcement: who did what, and when."""

    announcement_id: int
    kind: str  # published, corrected, withdrawn, expired, reminded
    actor: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None
