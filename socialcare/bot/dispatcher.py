"""Keep every card of every case in step with the case, within the messengers' limits.

Cards are synced, not pushed: the dispatcher renders a case's current view and sends
an edit only when it differs from what the card shows. Changes made while an edit
was on its way are caught by the card's change counter and synced next round, so no
edit is lost, several changes coalesce into one edit, and a retry cannot edit twice.

Posting a new card is the one step that is not idempotent. The attempt is recorded
before the call; if its outcome is unknown (a timeout), the next attempt first asks
the messenger whether the card is already there (Slack finds it by the case id in
the message metadata) instead of posting again.

Under a burst, cards go out new first, then changed, then SLA steps — each group
earliest deadline first. A channel that is out of budget, or whose last call failed,
is held (in the shared budgets) and nothing of it is sent until it has room again;
then its most pressing card goes first, so failures never reorder a channel.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from socialcare.bot import cards as card_views
from socialcare.bot.catalog import Catalog
from socialcare.bot.model import Card, Case, Event, EventKind, Mention, Tier
from socialcare.bot.ports import (
    Clock,
    Messenger,
    MessengerError,
    Note,
    RateBudgets,
    RateLimit,
    RateLimited,
    Undeliverable,
    UnitOfWork,
)
from socialcare.bot.team import Person, Team

log = logging.getLogger(__name__)

# A post attempt this old with no outcome is presumed dead and may be retried.
POST_STALE = timedelta(seconds=60)
RETRY_FIRST = timedelta(seconds=1)
RETRY_MAX = timedelta(minutes=5)
# Cards of one channel looked at per round: a channel sends about one a second.
PER_CHANNEL = 5
_NOTE_KINDS = frozenset({EventKind.SLA_POINT, EventKind.CLAIM_EXPIRED})


@dataclass(frozen=True)
class Posted:
    """A card that reached its channel, and how long after the customer wrote."""

    case_id: int
    messenger: str
    channel: str
    tier: Tier
    since_published: float
    since_collected: float


@dataclass
class DispatchReport:
    """What one round of syncing did."""

    posted: list[Posted] = field(default_factory=list)
    edited: int = 0
    unchanged: int = 0
    notes: int = 0
    deferred: int = 0
    failed: int = 0
    # Channels (messenger, id) that may send nothing more this round.
    held: set[tuple[str, str]] = field(default_factory=set)
    # The shortest wait a held channel asked for, in seconds.
    retry_in: float | None = None

    @property
    def busy(self) -> bool:
        """Tell whether the round sent anything or left work for later."""
        return bool(self.posted or self.edited or self.notes or self.failed)


def fingerprint(view: card_views.CardView) -> str:
    """Return a short digest of a card view; equal views have equal digests."""
    return hashlib.sha256(repr(view).encode()).hexdigest()[:32]


class Dispatcher:
    """Sync due cards to their messengers."""

    def __init__(
        self,
        team: Team,
        catalog: Catalog,
        *,
        uow: Callable[[], UnitOfWork],
        clock: Clock,
        messengers: Mapping[str, Messenger],
        budgets: RateBudgets,
        can_publish: Callable[[str], bool] = lambda source: False,
    ) -> None:
        self._team = team
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._messengers = messengers
        self._budgets = budgets
        self._can_publish = can_publish

    async def sync(self, *, limit: int = 100) -> DispatchReport:
        """Sync up to `limit` due cards, most pressing first."""
        report = DispatchReport()
        if not self._messengers:
            return report
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.cards.due(now, messengers=list(self._messengers),
                                      per_channel=PER_CHANNEL, limit=limit)
            if not due:
                return report
            case_ids = {card.case_id for card in due}
            cases = await uow.cases.get_many(case_ids)
            firsts = await uow.mentions.first_of(case_ids)
            events = await uow.events.for_cases(case_ids)
        for card in due:
            case = cases[card.case_id]
            try:
                await self._sync(card, case, firsts.get(card.case_id),
                                 events.get(card.case_id, []), now, report)
            except Exception:
                # One card's surprise must not stall the others.
                log.exception("syncing card %s of case #%s failed", card.id, card.case_id)
                report.failed += 1
                await self._retry_later(card, now)
        return report

    async def _sync(
        self,
        card: Card,
        case: Case,
        first: Mention | None,
        events: Sequence[Event],
        now: datetime,
        report: DispatchReport,
    ) -> None:
        messenger = self._messengers[card.messenger]
        view = card_views.render_card(
            case, first, events, team=self._team, catalog=self._catalog, now=now,
            can_publish=self._can_publish(case.source),
        )
        digest = fingerprint(view)
        next_due = card_views.next_step(case, self._team.sla.for_tier(case.tier), now)
        if card.message_id is None:
            await self._post(card, case, view, digest, next_due, events, now, report)
            return
        if digest != card.fingerprint:
            limits = messenger.limits("update", card.channel)
            if not await self._room(limits, card, report):
                return
            try:
                await messenger.update_card(card.channel, card.message_id, view)
            except Undeliverable as gone:
                log.warning("card of case #%s in %s %s cannot be edited: %s",
                            case.id, card.messenger, card.channel, gone)
            except MessengerError as error:
                log.warning("editing the card of case #%s in %s %s failed: %s",
                            case.id, card.messenger, card.channel, error)
                await self._hold(card, error, limits, report)
                return
            report.edited += 1
        else:
            report.unchanged += 1
        notes_done = await self._notes(card, case, events, now, report)
        async with self._uow() as uow:
            # With notes still to go, the card stays due until they are out.
            await uow.cards.synced(card, seq=card.change_seq, fingerprint=digest,
                                   next_due=next_due if notes_done else now)
            await uow.commit()

    async def _post(
        self,
        card: Card,
        case: Case,
        view: card_views.CardView,
        digest: str,
        next_due: datetime | None,
        events: Sequence[Event],
        now: datetime,
        report: DispatchReport,
    ) -> None:
        assert case.id is not None
        if not case.is_open:
            # Closed before its card could go out: nobody needs it any more.
            async with self._uow() as uow:
                await uow.cards.synced(card, seq=card.change_seq, fingerprint=None,
                                       next_due=None)
                await uow.commit()
            return
        messenger = self._messengers[card.messenger]
        limits = messenger.limits("post", card.channel)
        if not await self._room(limits, card, report):
            return
        async with self._uow() as uow:
            mine = await uow.cards.begin_post(card, now=now, stale=now - POST_STALE)
            await uow.commit()
        if not mine:
            return
        try:
            message_id = None
            if card.post_attempts > 0:
                message_id = await messenger.find_card(card.channel, case.id)
                if message_id is not None:
                    log.info("card of case #%s was already in %s %s: not posting it again",
                             case.id, card.messenger, card.channel)
            if message_id is None:
                message_id = await messenger.post_card(card.channel, view)
        except MessengerError as error:
            async with self._uow() as uow:
                await uow.cards.post_failed(card)
                await uow.commit()
            await self._hold(card, error, limits, report)
            log.warning("posting the card of case #%s to %s %s failed: %s",
                        case.id, card.messenger, card.channel, error)
            return
        sent = self._clock.now()
        latest = max((e.id or 0 for e in events), default=0)
        async with self._uow() as uow:
            await uow.cards.posted(card, message_id=message_id, at=sent)
            await uow.cards.synced(card, seq=card.change_seq, fingerprint=digest,
                                   next_due=next_due)
            # Alerts fired before the card existed are already history on it.
            await uow.cards.notified(card, event_id=latest)
            await uow.commit()
        posted = Posted(
            case_id=case.id, messenger=card.messenger, channel=card.channel, tier=case.tier,
            since_published=(sent - case.published_at).total_seconds(),
            since_collected=(sent - case.collected_at).total_seconds(),
        )
        report.posted.append(posted)
        log.info("card of case #%s posted to %s %s: %.1f s after publication, %.1f s after "
                 "collection", case.id, card.messenger, card.channel, posted.since_published,
                 posted.since_collected)

    async def _notes(
        self,
        card: Card,
        case: Case,
        events: Sequence[Event],
        now: datetime,
        report: DispatchReport,
    ) -> bool:
        """Post the card's pending alerts in its thread; tell whether none is left."""
        pending = [
            e for e in events
            if e.kind in _NOTE_KINDS and (e.id or 0) > card.notified_event_id
            and not e.data.get("superseded")
        ]
        if not pending or card.message_id is None:
            return True
        messenger = self._messengers[card.messenger]
        primary = await self._is_primary(card)
        for event in pending:
            assert event.id is not None
            note, in_thread = self._note(case, event, now, pings=primary)
            limits = messenger.limits("post", card.channel)
            if not await self._room(limits, card, report):
                return False
            # Claim the note before sending it: a ping may be lost in a crash, but is
            # never sent twice by two workers.
            async with self._uow() as uow:
                claimed = await uow.cards.notified(card, event_id=event.id)
                await uow.commit()
            if not claimed:
                return True  # another worker is on it
            previous, card.notified_event_id = card.notified_event_id, event.id
            try:
                await messenger.post_note(
                    card.channel, note, thread=card.message_id if in_thread else None
                )
            except MessengerError as error:
                async with self._uow() as uow:
                    await uow.cards.notified(card, event_id=previous)
                    await uow.commit()
                card.notified_event_id = previous
                await self._hold(card, error, limits, report)
                return False
            report.notes += 1
        return True

    async def _is_primary(self, card: Card) -> bool:
        # Pings go with the first card of a case in each messenger, so that a lead who
        # sits in two channels is pinged once per point.
        async with self._uow() as uow:
            siblings = await uow.cards.for_case(card.case_id)
        return min(c.id or 0 for c in siblings if c.messenger == card.messenger) == card.id

    def _note(self, case: Case, event: Event, now: datetime, *, pings: bool) -> tuple[Note, bool]:
        text = self._catalog
        data = event.data
        if event.kind is EventKind.CLAIM_EXPIRED:
            holder = card_views.display_name(str(data.get("holder")), self._team, text)
            return Note(text("note.claim_expired", id=case.id, who=holder)), False
        due = datetime.fromisoformat(data["due_at"])
        clock_name = data["clock"]
        point = data["point"]
        body = text(
            f"note.{clock_name}.{point}", id=case.id, percent=data["percent"],
            minutes=data["minutes_over"],
            deadline=due.astimezone(self._team.zone).strftime("%H:%M"),
        )
        if data.get("late_seconds"):
            body += " " + text("note.late", minutes=round(data["late_seconds"] / 60))
        leads: tuple[Person, ...] = ()
        if pings and point in ("breach", "repeat") and clock_name == "response":
            leads = tuple(self._team.leads_on_duty(now))
        return Note(body, mention=leads), True

    async def _room(
        self, limits: Sequence[RateLimit], card: Card, report: DispatchReport
    ) -> bool:
        """Take the call from the budgets; if the channel has no room, hold it for the
        rest of the round (its cards stay due and keep their order)."""
        channel = (card.messenger, card.channel)
        if channel in report.held:
            report.deferred += 1
            return False
        wait = await self._budgets.acquire(limits)
        if wait <= 0:
            return True
        report.held.add(channel)
        report.deferred += 1
        report.retry_in = wait if report.retry_in is None else min(report.retry_in, wait)
        return False

    async def _hold(
        self,
        card: Card,
        error: MessengerError,
        limits: Sequence[RateLimit],
        report: DispatchReport,
    ) -> None:
        """After a failed call, stop the channel for the backoff: nothing of it is sent
        until then, and then its most pressing card goes first."""
        report.failed += 1
        report.held.add((card.messenger, card.channel))
        backoff = self._backoff(card, error)
        key = error.limit_key if isinstance(error, RateLimited) and error.limit_key else (
            limits[0].key if limits else None
        )
        if key is not None:
            await self._budgets.hold_off(key, backoff.total_seconds())

    async def _retry_later(self, card: Card, now: datetime) -> None:
        async with self._uow() as uow:
            await uow.cards.defer(card, until=now + RETRY_MAX)
            await uow.commit()

    @staticmethod
    def _backoff(card: Card, error: MessengerError) -> timedelta:
        """Wait what the platform asked; else double the wait with each failed post
        of this card (an edit or a note waits the first step: the channel is held
        meanwhile, so a failing platform sees one try per step, not a stream)."""
        if error.retry_after is not None:
            return timedelta(seconds=error.retry_after)
        failed_posts = max(0, card.post_attempts - 1) if card.message_id is None else 0
        backoff: timedelta = RETRY_FIRST * 2 ** min(failed_posts, 9)
        return min(backoff, RETRY_MAX)
