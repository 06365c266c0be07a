"""The announcements' outbox: every copy brought in step with its announcement.

The database is the truth: a copy is due until it has sent its announcement's
revision. Each round takes the due copies under a lease (so two processes never send
one twice), works the audiences side by side — a slow or failing mail server holds
up its own copies, not the chats of the others — and records each copy's outcome:
reached, or failed with a growing wait before the next try. A copy that keeps failing
gives up after about a day; the author hears of the first failure of an audience and
of a copy giving up.

A chat copy is posted (and pinned) once; afterwards it is edited to show a
correction, and edited and unpinned when the announcement is withdrawn or expires.
Posting is the one step that is not idempotent: a post whose outcome is unknown is
looked for (Slack finds it by its metadata) before it is posted again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from socialcare.bot.announcements.model import Announcement, Copy, Outlet
from socialcare.bot.announcements.ports import Mailer, MailFailed, MailRefused
from socialcare.bot.announcements.views import (
    AnnouncementView,
    mail_for,
    render_copy,
    webhook_body,
)
from socialcare.bot.catalog import Catalog
from socialcare.bot.notices import notices_for
from socialcare.bot.ports import (
    Clock,
    DeliveryFailed,
    Messenger,
    MessengerError,
    RateBudgets,
    Undeliverable,
    UnitOfWork,
    WebhookSender,
)
from socialcare.bot.team import Team

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
GIVE_UP_AFTER = 20  # failed attempts in a row: about a day of retries
BATCH = 50


@dataclass(frozen=True)
class Outlets:
    """Where copies go out: the messengers, the mailer, the webhook sender."""

    messengers: Mapping[str, Messenger]
    budgets: RateBudgets
    mailer: Mailer | None = None
    webhooks: WebhookSender | None = None


@dataclass
class DeliveryRound:
    """What one round did."""

    reached: list[Copy] = field(default_factory=list)
    failed: list[Copy] = field(default_factory=list)
    gave_up: list[Copy] = field(default_factory=list)
    deferred: int = 0

    @property
    def busy(self) -> bool:
        """Tell whether the round sent or tried anything."""
        return bool(self.reached or self.failed or self.gave_up)


class _Wait(Exception):
    """A messenger's budget has no room: try the copy again after `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no room for {seconds:.1f} s")
        self.seconds = seconds


class _GiveUp(Exception):
    """Retrying cannot help (no such channel, no outlet configured, mail refused)."""


class Deliverer:
    """Bring due copies in step with their announcements."""

    def __init__(self, team: Team, catalog: Catalog, *, uow: Callable[[], UnitOfWork],
                 clock: Clock, outlets: Outlets) -> None:
        self._team = team
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._outlets = outlets

    async def deliver(self, *, limit: int = BATCH) -> DeliveryRound:
        """Work the due copies, the audiences side by side; return what happened."""
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.announcements.copies_due(now, limit=limit)
            taken = [copy for copy in due
                     if await uow.announcements.lease(copy, now=now, until=now + LEASE)]
            announcements = {i: await uow.announcements.get(i)
                             for i in {c.announcement_id for c in taken}}
            await uow.commit()
        groups: dict[tuple[str, Outlet], list[Copy]] = {}
        for copy in taken:
            groups.setdefault((copy.audience, copy.outlet), []).append(copy)
        report = DeliveryRound()
        outcomes = await asyncio.gather(*(self._group(items, announcements, report)
                                          for items in groups.values()), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # Its copies stay leased until the lease runs out, then are tried again.
                log.error("a group of announcement copies failed", exc_info=outcome)
        await self._tell_authors(report, announcements)
        return report

    async def _group(self, copies: Sequence[Copy], announcements: Mapping[int, Announcement],
                     report: DeliveryRound) -> None:
        """Work one audience's copies of one outlet, one after another."""
        for copy in copies:
            announcement = announcements[copy.announcement_id]
            now = self._clock.now()
            try:
                await self._bring_in_step(copy, announcement)
            except _Wait as wait:
                copy.next_try_at = now + timedelta(seconds=wait.seconds)
                report.deferred += 1
            except _GiveUp as reason:
                self._failed(copy, str(reason), now, give_up=True)
                report.gave_up.append(copy)
            except (MessengerError, MailFailed, DeliveryFailed) as error:
                self._failed(copy, str(error), now)
                (report.gave_up if copy.gave_up_at else report.failed).append(copy)
            except Exception as error:
                # A surprise (a bug, a storage hiccup) must not stop the other copies.
                log.exception("announcement copy %s failed unexpectedly", copy.id)
                self._failed(copy, f"{type(error).__name__}: {error}", now)
                report.failed.append(copy)
            else:
                copy.revision_sent = announcement.revision
                copy.attempts, copy.last_error, copy.next_try_at = 0, None, None
                copy.delivered_at = copy.delivered_at or self._clock.now()
                report.reached.append(copy)
            async with self._uow() as uow:
                await uow.announcements.save_copy(copy)
                await uow.commit()

    def _failed(self, copy: Copy, error: str, now: datetime, *, give_up: bool = False) -> None:
        copy.attempts += 1
        copy.last_error = error[:500]
        if give_up or copy.attempts >= GIVE_UP_AFTER:
            copy.gave_up_at, copy.next_try_at = now, None
            log.warning("announcement #%s to %s %s given up: %s", copy.announcement_id,
                        copy.outlet.value, copy.address, error)
            return
        copy.next_try_at = now + min(RETRY_FIRST * 2 ** (copy.attempts - 1), RETRY_MAX)
        log.warning("announcement #%s to %s %s failed (attempt %d): %s", copy.announcement_id,
                    copy.outlet.value, copy.address, copy.attempts, error)

    async def _bring_in_step(self, copy: Copy, announcement: Announcement) -> None:
        if copy.outlet.is_chat:
            await self._chat(copy, announcement)
        elif copy.outlet is Outlet.EMAIL:
            await self._mail(copy, announcement)
        else:
            await self._webhook(copy, announcement)

    async def _chat(self, copy: Copy, announcement: Announcement) -> None:
        messenger = self._outlets.messengers.get(copy.outlet.value)
        if messenger is None:
            raise _GiveUp(f"{copy.outlet.value.capitalize()} is not set up")
        now = self._clock.now()
        view = render_copy(announcement, team=self._team, catalog=self._catalog, now=now)
        if copy.message_id is None:
            if not view.in_force:
                return  # ended before it went out: nothing to show
            await self._post(messenger, copy, view, now)
        elif copy.revision_sent < announcement.revision or copy.pinned != view.in_force:
            await self._room(messenger, "update", copy.address)
            try:
                await messenger.update_card(copy.address, copy.message_id, view)
            except Undeliverable as gone:
                raise _GiveUp(str(gone)) from gone
        if copy.message_id is not None and copy.pinned != view.in_force:
            try:
                if view.in_force:
                    await messenger.pin(copy.address, copy.message_id)
                else:
                    await messenger.unpin(copy.address, copy.message_id)
            except Undeliverable as refused:
                # The bot may not pin there (not an admin): the copy is in the chat all
                # the same, and retrying cannot help.
                log.warning("announcement #%s in %s %s not %s: %s", copy.announcement_id,
                            copy.outlet.value, copy.address,
                            "pinned" if view.in_force else "unpinned", refused)
                return
            copy.pinned = view.in_force

    async def _post(self, messenger: Messenger, copy: Copy, view: AnnouncementView,
                    now: datetime) -> None:
        assert copy.id is not None
        if copy.posting_since is not None:
            # An earlier post's outcome is unknown: it may be in the chat already.
            found = await messenger.find_announcement(copy.address, copy.announcement_id)
            if found is not None:
                log.info("announcement #%s was already in %s %s: not posting it again",
                         copy.announcement_id, copy.outlet.value, copy.address)
                copy.message_id = found
        if copy.message_id is None:
            await self._room(messenger, "post", copy.address)
            copy.posting_since = now
            async with self._uow() as uow:
                await uow.announcements.save_copy(copy, keep_lease=True)
                await uow.commit()
            try:
                message_id = await messenger.post_card(copy.address, view)
            except Undeliverable as gone:
                copy.posting_since = None
                raise _GiveUp(str(gone)) from gone
            copy.message_id = message_id
        copy.posting_since = None
        async with self._uow() as uow:
            await uow.announcements.posted(copy, message_id=copy.message_id)
            await uow.commit()

    async def _room(self, messenger: Messenger, operation: str, channel: str) -> None:
        wait = await self._outlets.budgets.acquire(messenger.limits(operation, channel))
        if wait > 0:
            raise _Wait(wait)

    async def _mail(self, copy: Copy, announcement: Announcement) -> None:
        mail = mail_for(announcement, copy, team=self._team, catalog=self._catalog,
                        now=self._clock.now())
        if mail is None:
            return
        if self._outlets.mailer is None:
            raise _GiveUp("e-mail is not set up (SMTP_URL)")
        try:
            await self._outlets.mailer.send(mail)
        except MailRefused as refused:
            raise _GiveUp(str(refused)) from refused

    async def _webhook(self, copy: Copy, announcement: Announcement) -> None:
        body = webhook_body(announcement, copy, team=self._team, catalog=self._catalog,
                            now=self._clock.now())
        if body is None:
            return
        if self._outlets.webhooks is None:
            raise _GiveUp("webhooks are not set up (ANNOUNCEMENT_WEBHOOK_SECRET)")
        await self._outlets.webhooks.post(copy.address, body)

    async def _tell_authors(self, report: DeliveryRound,
                            announcements: Mapping[int, Announcement]) -> None:
        """Tell each author once per audience that it is not reached yet (at a copy's
        first failure) and when a copy gives up."""
        told: dict[tuple[int, str, str], list[Copy]] = {}
        for copy in report.failed:
            if copy.attempts == 1:
                told.setdefault((copy.announcement_id, copy.audience, "failing"), []).append(copy)
        for copy in report.gave_up:
            told.setdefault((copy.announcement_id, copy.audience, "gave_up"), []).append(copy)
        notices = []
        at = self._clock.now()
        for (announcement_id, audience, kind), copies in told.items():
            author = self._team.person(announcements[announcement_id].author)
            if author is None:
                continue
            places = "; ".join(
                f"{self._catalog(f'announcement.outlet.{c.outlet.value}')}: {c.last_error}"
                if c.outlet is Outlet.WEBHOOK else
                f"{self._catalog(f'announcement.outlet.{c.outlet.value}')} {c.address}: "
                f"{c.last_error}" for c in copies)
            found = self._team.audience(audience)
            label = found.label if found else self._catalog("announcement.team")
            for notice in notices_for(author, f"announcement.notice.{kind}", id=announcement_id,
                                      audience=label, places=places[:1000]):
                notice.created_at = at
                notices.append(notice)
        if notices:
            async with self._uow() as uow:
                await uow.notices.add(notices)
                await uow.commit()
