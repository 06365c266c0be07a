"""What announcements need from the outside: their storage and a mailer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from socialcare.bot.announcements.model import Announcement, AnnouncementEvent, Copy, Receipt


class AnnouncementRepository(Protocol):
    """Stores announcements, their copies, receipts and the cases answered with them."""

    async def add(self, announcement: Announcement, copies: Sequence[Copy]) -> None:
        """Store a new announcement with its copies; set their ids."""
        ...

    async def get(self, announcement_id: int) -> Announcement:
        """Return the announcement, or raise AnnouncementNotFound."""
        ...

    async def save(self, announcement: Announcement) -> None:
        """Store a changed announcement if nobody changed it since it was read, else
        raise ConcurrentUpdate; bump its version."""
        ...

    async def add_events(self, new: Sequence[AnnouncementEvent]) -> None:
        """Append announcement events."""
        ...

    async def events_for(self, announcement_id: int) -> list[AnnouncementEvent]:
        """Return an announcement's events in order."""
        ...

    async def in_force(self, now: datetime) -> list[Announcement]:
        """Return the active announcements whose `until` has not come, newest first."""
        ...

    async def published_between(self, start: datetime, end: datetime) -> list[Announcement]:
        """Return the announcements made in [start, end), oldest first."""
        ...

    async def expiring(self, now: datetime, *, limit: int) -> list[Announcement]:
        """Return active announcements whose `until` has come."""
        ...

    async def copies_of(self, announcement_ids: Collection[int]) -> dict[int, list[Copy]]:
        """Return the copies of these announcements."""
        ...

    async def copies_due(self, now: datetime, *, limit: int) -> list[Copy]:
        """Return copies due now and not leased, longest waiting first."""
        ...

    async def make_due(self, announcement_id: int, *, at: datetime) -> None:
        """Make every copy of the announcement that has not given up due at `at`, and
        count the change on each."""
        ...

    async def lease(self, copy: Copy, *, now: datetime, until: datetime) -> bool:
        """Take a copy until `until` if it is still as read and not leased; set its
        `leased_until`. False if another worker took it."""
        ...

    async def save_copy(self, copy: Copy, *, keep_lease: bool = False) -> None:
        """Store how far a leased copy got and end the lease (unless `keep_lease`); its
        `next_try_at` is written only if no change made the copy due again since it was
        read (its `changes` are as read): else it stays due."""
        ...

    async def posted(self, copy: Copy, *, message_id: str) -> None:
        """Record at once where a chat copy was posted (still leased)."""
        ...

    async def find_copy(self, announcement_id: int, outlet: str, address: str) -> Copy | None:
        """Return the announcement's copy in a place, if it has one."""
        ...

    async def acknowledge(self, receipt: Receipt) -> bool:
        """Record a Got it; False if this person had pressed it already."""
        ...

    async def receipts(self, announcement_ids: Collection[int]) -> dict[int, list[Receipt]]:
        """Return the receipts of these announcements, oldest first."""
        ...

    async def record_answer(self, announcement_id: int, case_id: int, *, by: str,
                            at: datetime) -> None:
        """Record that a case was answered with the announcement (once per case)."""
        ...

    async def answered(self, announcement_ids: Collection[int]) -> dict[int, int]:
        """Count the cases answered with each of these announcements."""
        ...


@dataclass(frozen=True)
class Mail:
    """An e-mail about an announcement, in the team's language; the mailer lays it out
    as plain text and HTML (escaping every piece of it)."""

    to: str
    subject: str
    heading: str
    body: str  # the announcement's text, raw
    details: tuple[str, ...]  # "From: Saule", "Until: 25.11 18:00", …
    footer: str
    language: str
    key: str  # stable per announcement, revision and recipient: the Message-ID
    follows: str | None = None  # the key of the first mail, for a correction


class MailFailed(Exception):
    """The mail was not taken; worth trying again later."""


class MailRefused(MailFailed):
    """The mail server refused the recipient or the message for good."""


class Mailer(Protocol):
    """Sends e-mail."""

    async def send(self, mail: Mail) -> None:
        """Send one mail, or raise MailFailed."""
        ...
