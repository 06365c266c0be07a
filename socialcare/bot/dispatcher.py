"""Keep every card in step with what it shows, within the messengers' limits.

A card shows a case (in a team channel) or an escalation (in a director's direct
messages). Cards are synced, not pushed: the dispatcher renders the current view and
sends an edit only when it differs from what the card shows. Changes made while an
edit was on its way are caught by the card's change counter and synced next round,
so no edit is lost, several changes coalesce into one edit, and a retry cannot edit
twice. Alerts (SLA points, lapsed claims, escalation reminders) go into the card's
thread once; notices (direct messages) go out once.

Posting a new card is the one step that is not idempotent. The attempt is recorded
before the call; if its outcome is unknown (its answer was lost, or its process
stopped mid-call), the card counts it, and the next attempt first asks the messenger
whether the card is already there (Slack finds it by the case id in the message
metadata) instead of posting again. A messenger that cannot look (Telegram's Bot API
lists no chat's messages) posts again: each such attempt may have left a copy, and
the round reports it as a possible double.

Under a burst, cards go out new first, then changed, then SLA steps — each group
earliest deadline first. A channel that is out of budget, or whose last call failed,
is held (in the shared budgets) and nothing of it is sent until it has room again;
then its most pressing card goes first, so failures never reorder a channel.

Channels are worked side by side, each in order, paced exactly to its limits: a
card's call books the channel's next slot (up to `book_ahead` seconds away) and
waits for it, and the card's bookkeeping commits while the next card of the channel
goes out. A channel whose next slot is more than a second away sends that one card
and lets the round end, so that a change made meanwhile is looked at before the
channel's next slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from socialcare.bot import cards as card_views
from socialcare.bot import sla
from socialcare.bot.announcements.official import OfficialAnswers
from socialcare.bot.catalog import Catalog
from socialcare.bot.escalation_card import EscalationView, render_escalation
from socialcare.bot.escalations import Escalation, EscalationEvent
from socialcare.bot.model import Card, Case, Event, EventKind, Mention, Tier
from socialcare.bot.notices import Notice
from socialcare.bot.ports import (
    Booking,
    Clock,
    Messenger,
    MessengerError,
    Note,
    OutcomeUnknown,
    RateBudgets,
    RateLimit,
    RateLimited,
    Undeliverable,
    UnitOfWork,
)
from socialcare.bot.team import Person, Team

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# A post attempt this old with no outcome is presumed dead and may be retried.
POST_STALE = timedelta(seconds=60)
RETRY_FIRST = timedelta(seconds=1)
RETRY_MAX = timedelta(minutes=5)
# A card whose sync failed unexpectedly (a storage hiccup, a bug) is tried again after
# this: soon enough that a new case's card is not held back long, not so soon that a
# card that always fails floods the log.
RETRY_SURPRISE = timedelta(seconds=30)
# New cards of the extra tier (forums, news) may use this share of a channel's
# per-minute post budget at most, so that a burst of them leaves room for the main
# tier's 15-minute cases: a Telegram group takes 20 messages a minute, 5 of them
# forum cards (60-minute SLA), 15 left for the main networks. Slack's per-second
# channel limit has no per-minute key and is not shared out.
EXTRA_SHARE = 0.25
# Cards of one channel looked at per round: a channel sends about one a second.
PER_CHANNEL = 5
# A channel whose next slot is further away than this sends one more card and ends
# its turn (a Telegram group, past its burst, gets a slot every 3 s): the round then
# reads what changed meanwhile before the channel's next slot comes.
CONTINUE_WAIT = 1.5
# How far ahead the running app's calls book their channel's slot: past a Telegram
# group's 3 s, so that a channel at its limit keeps its pace from round to round.
BOOK_AHEAD = 5.0
# An SLA step's edit (only the "time left" moved) is a bonus: it takes a slot that is
# free now, never books one ahead, so that a change made meanwhile (a claim) gets
# the channel's next slot instead of waiting behind a clock's tick.
STEP_BOOK_AHEAD = 0.0
# Card ranks (the order `due` returns them in).
_STEP = 2
NOTICES_PER_ROUND = 50
_CASE_ALERTS = frozenset({EventKind.SLA_POINT, EventKind.CLAIM_EXPIRED})
_ESCALATION_ALERTS = frozenset({"reminded", "handed_over"})


@dataclass(frozen=True)
class Posted:
    """A case card that reached its channel, and how long after the customer wrote."""

    case_id: int
    messenger: str
    channel: str
    tier: Tier
    since_published: float
    since_collected: float


@dataclass(frozen=True)
class PossibleDouble:
    """A card posted after attempts whose outcome is unknown, which the messenger cannot
    look for: each may have left a copy of the card in the channel."""

    case_id: int | None
    messenger: str
    channel: str
    copies: int


@dataclass
class DispatchReport:
    """What one round of syncing did."""

    posted: list[Posted] = field(default_factory=list)
    possible_doubles: list[PossibleDouble] = field(default_factory=list)
    edited: int = 0
    unchanged: int = 0
    notes: int = 0
    notices: int = 0
    deferred: int = 0
    failed: int = 0
    # Channels (messenger, id) that may send nothing more this round.
    held: set[tuple[str, str]] = field(default_factory=set)
    # The shortest wait a held channel asked for, in seconds.
    retry_in: float | None = None

    @property
    def busy(self) -> bool:
        """Tell whether the round sent anything or left work for later."""
        return bool(self.posted or self.edited or self.notes or self.notices or self.failed)


@dataclass
class _Lane:
    """One channel's turn in a round: whether it is over, and the bookkeeping of its
    calls still committing."""

    over: bool = False
    pending: list[asyncio.Task[None]] = field(default_factory=list)

    def later(self, work: Coroutine[None, None, None]) -> None:
        """Commit `work` while the channel's next call goes out."""
        self.pending.append(asyncio.create_task(work))

    async def settle(self) -> None:
        """Wait for the bookkeeping still committing."""
        for outcome in await asyncio.gather(*self.pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("recording a card's call failed", exc_info=outcome)
        self.pending.clear()


@dataclass
class _Target:
    """What a card should show now, and the alerts its thread still owes."""

    view: card_views.CardView | EscalationView
    next_due: datetime | None  # when the view changes by itself (an SLA step)
    live: bool  # worth posting, if not posted yet
    alerts: list[tuple[int, Note, bool]]  # (event id, note, in the card's thread)
    latest_event: int  # alerts up to here predate the card
    case: Case | None = None


def fingerprint(view: card_views.CardView | EscalationView) -> str:
    """Return a short digest of a card view; equal views have equal digests."""
    return hashlib.sha256(repr(view).encode()).hexdigest()[:32]


class Dispatcher:
    """Sync due cards and send pending notices."""

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
        escalation_url: Callable[[int], str | None] = lambda escalation_id: None,
        book_ahead: float = 0.0,
    ) -> None:
        self._team = team
        self._catalog = catalog
        self._uow = uow
        self._clock = clock
        self._messengers = messengers
        self._budgets = budgets
        self._can_publish = can_publish
        # Where every case of an escalation is listed (the console), if anywhere.
        self._escalation_url = escalation_url
        # How far ahead a card's call may book its channel's next slot (0: it goes at
        # once or the channel waits for a later round).
        self._book_ahead = book_ahead

    @property
    def messengers(self) -> list[str]:
        """Return the names of the messengers cards go to."""
        return list(self._messengers)

    async def sync(self, *, limit: int = 100,
                   messengers: Collection[str] | None = None) -> DispatchReport:
        """Sync up to `limit` due cards (of `messengers`, else of all), each channel's
        most pressing first, the channels side by side; then send notices."""
        report = DispatchReport()
        names = [name for name in self._messengers if messengers is None or name in messengers]
        if not names:
            return report
        now = self._clock.now()
        async with self._uow() as uow:
            due = await uow.cards.due(now, messengers=names, per_channel=PER_CHANNEL,
                                      limit=limit)
        due = await self._without_held(due, report)
        targets = await self._targets(due, now)
        channels: dict[tuple[str, str], list[Card]] = {}
        for card in due:
            channels.setdefault((card.messenger, card.channel), []).append(card)
        await asyncio.gather(*(self._turn(cards, targets, now, report)
                               for cards in channels.values()))
        await self._send_notices(now, report, names)
        return report

    async def _without_held(self, due: Sequence[Card], report: DispatchReport) -> list[Card]:
        """Leave out the cards whose channel is held off (after a 429 or a failed call)
        for longer than a call may book ahead: none of them could go this round, and
        rendering them would cost the event loop what the acks need. They stay due, in
        their order, and the channel is held for the round, as a booking would hold it."""
        limits = {card.id: self._limits(card) for card in due}
        held = await self._budgets.held({limit.key for of_card in limits.values()
                                         for limit in of_card})
        if not held:
            return list(due)
        kept = []
        for card in due:
            left = max((held.get(limit.key, 0.0) for limit in limits[card.id]), default=0.0)
            if left <= self._book_ahead:
                kept.append(card)
                continue
            report.held.add((card.messenger, card.channel))
            report.deferred += 1
            report.retry_in = left if report.retry_in is None else min(report.retry_in, left)
        return kept

    def _limits(self, card: Card) -> Sequence[RateLimit]:
        """Return the limits the card's next call counts against (a post or an edit)."""
        operation = "post" if card.message_id is None else "update"
        return self._messengers[card.messenger].limits(operation, card.channel)

    async def _turn(self, cards: Sequence[Card], targets: Mapping[int, _Target],
                    now: datetime, report: DispatchReport) -> None:
        """Sync one channel's due cards in order, until its turn is over."""
        lane = _Lane()
        try:
            for card in cards:
                try:
                    await self._sync(card, targets[card.id or 0], now, report, lane)
                except Exception:
                    # One card's surprise must not stall the others.
                    log.exception("syncing card %s failed", card.id)
                    report.failed += 1
                    await self._retry_later(card, now)
                if lane.over:
                    break
        finally:
            await lane.settle()

    async def _targets(self, due: Sequence[Card], now: datetime) -> dict[int, _Target]:
        case_ids = {c.case_id for c in due if c.case_id is not None}
        escalation_ids = {c.escalation_id for c in due if c.escalation_id is not None}
        async with self._uow() as uow:
            escalations = {e: await uow.escalations.get(e) for e in escalation_ids}
            escalation_events = await uow.escalations.events_for(escalation_ids)
            case_ids |= {i for e in escalations.values() for i in e.case_ids}
            cases = await uow.cases.get_many(case_ids)
            firsts = await uow.mentions.first_of(case_ids)
            events = await uow.events.for_cases({c.case_id for c in due if c.case_id})
            latest = await uow.escalations.latest_for_cases(case_ids)
            in_incident = await uow.incidents.of_cases(
                {c.case_id for c in due if c.case_id is not None})
            siblings = await uow.cards.for_cases(
                {c.case_id for c in due if c.case_id is not None and c.message_id is not None})
            answers = OfficialAnswers(await uow.announcements.in_force(now), now=now) \
                if case_ids else OfficialAnswers([], now=now)
        targets: dict[int, _Target] = {}
        for card in due:
            if card.case_id is not None:
                targets[card.id or 0] = self._case_target(
                    card, cases[card.case_id], firsts.get(card.case_id),
                    events.get(card.case_id, []), latest.get(card.case_id),
                    siblings.get(card.case_id, []), now, answers,
                    incident=in_incident.get(card.case_id),
                )
            else:
                assert card.escalation_id is not None
                escalation = escalations[card.escalation_id]
                director = self._team.person(escalation.director)
                addressed = director is not None and card.channel in (
                    director.slack, str(director.telegram))
                targets[card.id or 0] = self._escalation_target(
                    escalation, escalation_events.get(card.escalation_id, []), cases, firsts,
                    now, for_director=addressed,
                )
        return targets

    def _case_target(
        self,
        card: Card,
        case: Case,
        first: Mention | None,
        events: Sequence[Event],
        escalation: Escalation | None,
        siblings: Sequence[Card],
        now: datetime,
        answers: OfficialAnswers,
        *,
        incident: int | None = None,
    ) -> _Target:
        second_line = self._team.second_line_of_channel(card.messenger, card.channel)
        view = card_views.render_card(
            case, first, events, team=self._team, catalog=self._catalog, now=now,
            can_publish=self._can_publish(case.source), escalation=escalation,
            second_line=second_line,
            official=answers.for_case(first.text, case.topics)
            if first and case.is_open else None,
            incident=incident if second_line is None else None,
        )
        # Pings go with the first card of a case in each messenger, so that a lead who
        # sits in two channels is pinged once per point.
        primary = min((c.id or 0 for c in siblings if c.messenger == card.messenger),
                      default=card.id) == card.id
        alerts = [
            (e.id or 0, *self._case_alert(case, e, now, pings=primary))
            for e in events
            if e.kind in _CASE_ALERTS and (e.id or 0) > card.notified_event_id
            and not e.data.get("superseded")
        ]
        return _Target(
            view=view,
            next_due=card_views.next_step(case, self._team.sla.for_tier(case.tier), now),
            # A card in a second-line team's channel goes out while the team has the case.
            live=case.is_open and (second_line is None
                                   or case.handoff_team == second_line.name),
            alerts=alerts,
            latest_event=max((e.id or 0 for e in events), default=0),
            case=case,
        )

    def _escalation_target(
        self,
        escalation: Escalation,
        events: Sequence[EscalationEvent],
        cases: Mapping[int, Case],
        firsts: Mapping[int, Mention],
        now: datetime,
        *,
        for_director: bool,
    ) -> _Target:
        view = render_escalation(escalation, events, cases, firsts, team=self._team,
                                 catalog=self._catalog, now=now, for_director=for_director,
                                 cases_url=self._escalation_url(escalation.id or 0))
        alerts = [
            (e.id or 0, Note(self._catalog(f"note.escalation.{e.kind}", id=escalation.id,
                                           ping=e.data.get("ping", 0))), True)
            for e in events if e.kind in _ESCALATION_ALERTS
        ]
        return _Target(view=view, next_due=None, live=True, alerts=alerts,
                       latest_event=max((e.id or 0 for e in events), default=0))

    async def _sync(self, card: Card, target: _Target, now: datetime,
                    report: DispatchReport, lane: _Lane) -> None:
        digest = fingerprint(target.view)
        if card.message_id is None:
            await self._post(card, target, digest, now, report, lane)
            return
        edited = False
        if digest != card.fingerprint:
            if not await self._edit(card, card.message_id, target, now, report, lane):
                return
            edited = True
        else:
            report.unchanged += 1
        if not any(a[0] > card.notified_event_id for a in target.alerts):
            lane.later(self._record_sync(card, digest, target.next_due,
                                         edit_began=now if edited else None))
            return
        if edited:
            async with self._uow() as uow:
                await uow.cards.end_edit(card, began=now)
                await uow.commit()
        done = await self._alerts(card, target, report, lane)
        # With alerts still to go, the card stays due until they are out.
        await self._record_sync(card, digest, target.next_due if done else now)

    async def _record_sync(self, card: Card, digest: str, next_due: datetime | None, *,
                           edit_began: datetime | None = None) -> None:
        """Record what the card shows now (and give back its edit), in one transaction."""
        async with self._uow() as uow:
            if edit_began is not None:
                await uow.cards.end_edit(card, began=edit_began)
            await uow.cards.synced(card, seq=card.change_seq, fingerprint=digest,
                                   next_due=next_due)
            await uow.commit()

    async def _edit(self, card: Card, message_id: str, target: _Target, now: datetime,
                    report: DispatchReport, lane: _Lane) -> bool:
        """Edit the card to show the target; tell whether it was sent (or cannot be):
        then the card's claim on the edit is the caller's to give back.

        The card is claimed first, and only if the case has not changed since the card
        was read: of two workers looking at once one edits and takes the budget, and no
        edit from an older reading lands after a newer one."""
        if card.posting_since is not None and card.posting_since >= now - POST_STALE:
            return False
        async with self._uow() as uow:
            mine = await uow.cards.begin_edit(card, now=now, stale=now - POST_STALE)
            await uow.commit()
        if not mine:
            return False
        messenger = self._messengers[card.messenger]
        limits = messenger.limits("update", card.channel)
        sent = False
        try:
            booking = await self._room(limits, card, report, lane,
                                       ahead=STEP_BOOK_AHEAD if card.rank == _STEP else None)
            if booking is None:
                return False
            await asyncio.sleep(booking.wait)
            try:
                await self._sent(limits, booking,
                                 messenger.update_card(card.channel, message_id, target.view))
            except Undeliverable as gone:
                log.warning("card %s in %s %s cannot be edited: %s",
                            card.id, card.messenger, card.channel, gone)
            except MessengerError as error:
                log.warning("editing card %s in %s %s failed: %s",
                            card.id, card.messenger, card.channel, error)
                await self._hold(card, error, limits, report)
                return False
            report.edited += 1
            sent = True
            return True
        finally:
            if not sent:
                async with self._uow() as uow:
                    await uow.cards.end_edit(card, began=now)
                    await uow.commit()

    async def _post(self, card: Card, target: _Target, digest: str, now: datetime,
                    report: DispatchReport, lane: _Lane) -> None:
        if not target.live:
            # Closed before its card could go out: nobody needs it any more.
            async with self._uow() as uow:
                await uow.cards.synced(card, seq=card.change_seq, fingerprint=None,
                                       next_due=None)
                await uow.commit()
            return
        if card.posting_since is not None and card.posting_since >= now - POST_STALE:
            # Another round's post is on its way, or its outcome was never recorded: it
            # is looked for once stale. Meanwhile it takes none of the channel's budget.
            return
        messenger = self._messengers[card.messenger]
        limits = messenger.limits("post", card.channel)
        if target.case is not None and target.case.tier is Tier.EXTRA:
            limits = extra_share(limits)
        if (card.messenger, card.channel) in report.held:
            report.deferred += 1
            return
        # The attempt is recorded first, so that the call goes out right at its slot:
        # the platform counts the moment it arrives, not the moment it was booked.
        unsure = await self._begin_post(card, now)
        if unsure is None:
            return
        booking = await self._room(limits, card, report, lane)
        if booking is None:
            async with self._uow() as uow:
                await uow.cards.post_put_off(card, began=now)
                await uow.commit()
            return
        await asyncio.sleep(booking.wait)
        try:
            message_id = None
            if card.post_attempts > 0 and card.case_id is not None:
                message_id = await messenger.find_card(card.channel, card.case_id)
                if message_id is not None:
                    log.info("card of case #%s was already in %s %s: not posting it again",
                             card.case_id, card.messenger, card.channel)
            if message_id is None:
                message_id = await self._sent(limits, booking,
                                              messenger.post_card(card.channel, target.view))
                if unsure and not messenger.finds_cards:
                    self._possible_double(card, unsure, report)
        except MessengerError as error:
            lost = isinstance(error, OutcomeUnknown)
            async with self._uow() as uow:
                await uow.cards.post_failed(card, unsure=lost)
                await uow.commit()
            await self._hold(card, error, limits, report)
            log.warning("posting card %s to %s %s failed%s: %s",
                        card.id, card.messenger, card.channel,
                        " (its answer was lost: the card may be there)" if lost else "", error)
            return
        sent = self._clock.now()
        lane.later(self._record_post(card, message_id, sent, digest, target))
        case = target.case
        if case is not None and case.id is not None:
            posted = Posted(
                case_id=case.id, messenger=card.messenger, channel=card.channel,
                tier=case.tier, since_published=(sent - case.published_at).total_seconds(),
                since_collected=(sent - case.collected_at).total_seconds(),
            )
            report.posted.append(posted)
            log.info("card of case #%s posted to %s %s: %.1f s after publication, %.1f s "
                     "after collection", case.id, card.messenger, card.channel,
                     posted.since_published, posted.since_collected)

    async def _begin_post(self, card: Card, now: datetime) -> int | None:
        async with self._uow() as uow:
            unsure = await uow.cards.begin_post(card, now=now, stale=now - POST_STALE)
            await uow.commit()
        return unsure

    async def _record_post(self, card: Card, message_id: str, sent: datetime, digest: str,
                           target: _Target) -> None:
        """Record where the card went and what it shows, in one transaction."""
        async with self._uow() as uow:
            await uow.cards.posted(card, message_id=message_id, at=sent)
            await uow.cards.synced(card, seq=card.change_seq, fingerprint=digest,
                                   next_due=target.next_due)
            # Alerts fired before the card existed are already history on it.
            await uow.cards.notified(card, event_id=target.latest_event)
            await uow.commit()

    @staticmethod
    def _possible_double(card: Card, unsure: int, report: DispatchReport) -> None:
        report.possible_doubles.append(
            PossibleDouble(card.case_id, card.messenger, card.channel, unsure))
        log.warning("card %s of case #%s posted to %s %s after %d attempt(s) whose answer "
                    "was lost: as many copies of it may be in the channel too", card.id,
                    card.case_id, card.messenger, card.channel, unsure)

    async def _alerts(self, card: Card, target: _Target, report: DispatchReport,
                      lane: _Lane) -> bool:
        """Post the card's pending alerts in its thread; tell whether none is left."""
        pending = [a for a in target.alerts if a[0] > card.notified_event_id]
        if not pending or card.message_id is None:
            return True
        messenger = self._messengers[card.messenger]
        for event_id, note, in_thread in pending:
            limits = messenger.limits("post", card.channel)
            booking = await self._room(limits, card, report, lane)
            if booking is None:
                return False
            await asyncio.sleep(booking.wait)
            # Claim the alert before sending it: a ping may be lost in a crash, but is
            # never sent twice by two workers.
            async with self._uow() as uow:
                claimed = await uow.cards.notified(card, event_id=event_id)
                await uow.commit()
            if not claimed:
                return True  # another worker is on it
            previous, card.notified_event_id = card.notified_event_id, event_id
            try:
                await self._sent(limits, booking, messenger.post_note(
                    card.channel, note, thread=card.message_id if in_thread else None))
            except MessengerError as error:
                async with self._uow() as uow:
                    await uow.cards.notified(card, event_id=previous)
                    await uow.commit()
                card.notified_event_id = previous
                await self._hold(card, error, limits, report)
                return False
            report.notes += 1
        return True

    def _case_alert(self, case: Case, event: Event, now: datetime, *,
                    pings: bool) -> tuple[Note, bool]:
        text = self._catalog
        data = event.data
        if event.kind is EventKind.CLAIM_EXPIRED:
            holder = card_views.display_name(str(data.get("holder")), self._team, text)
            return Note(text("note.claim_expired", id=case.id, who=holder)), False
        clock_name = data["clock"]
        point = data["point"]
        body = text(
            f"note.{clock_name}.{point}", id=case.id, percent=data["percent"],
            minutes=data["minutes_over"],
            deadline=sla.parse_deadline(data).astimezone(self._team.zone).strftime("%H:%M"),
        )
        if data.get("late_seconds"):
            body += " " + text("note.late", minutes=round(data["late_seconds"] / 60))
        leads: tuple[Person, ...] = ()
        if pings and point in ("breach", "repeat") and clock_name == "response":
            leads = tuple(self._team.leads_on_duty(now))
        return Note(body, mention=leads), True

    async def _send_notices(self, now: datetime, report: DispatchReport,
                            messengers: Sequence[str]) -> None:
        """Send the direct messages that changes left behind, each once."""
        async with self._uow() as uow:
            pending = await uow.notices.pending(messengers=list(messengers),
                                                limit=NOTICES_PER_ROUND)
        for notice in pending:
            messenger = self._messengers[notice.messenger]
            limits = messenger.limits("post", notice.recipient)
            if (notice.messenger, notice.recipient) in report.held:
                continue
            if await self._budgets.acquire(limits) > 0:
                report.held.add((notice.messenger, notice.recipient))
                continue
            async with self._uow() as uow:
                mine = await uow.notices.claim(notice, at=now)
                await uow.commit()
            if not mine:
                continue
            try:
                await messenger.direct(notice.recipient, Note(self._notice_text(notice)))
            except Undeliverable as gone:
                log.warning("notice %s to %s %s cannot be delivered: %s", notice.id,
                            notice.messenger, notice.recipient, gone)
            except MessengerError as error:
                async with self._uow() as uow:
                    await uow.notices.release(notice)
                    await uow.commit()
                report.failed += 1
                report.held.add((notice.messenger, notice.recipient))
                log.warning("notice %s to %s failed: %s", notice.id, notice.messenger, error)
                continue
            async with self._uow() as uow:
                await uow.notices.sent(notice, at=self._clock.now())
                await uow.commit()
            report.notices += 1

    def _notice_text(self, notice: Notice) -> str:
        params = dict(notice.params)
        if "category" in params:
            params["category"] = self._catalog(f"category.{params['category']}")
        if "language" in params:
            params["language"] = self._catalog(f"language.{params['language']}")
        return self._catalog(notice.key, **params)

    async def _sent(self, limits: Sequence[RateLimit], booking: Booking,
                    call: Coroutine[Any, Any, _T]) -> _T:
        """Make a booked call; then tell the budgets it went (unless it was refused
        for the rate: the hold that follows says more)."""
        try:
            result = await call
        except RateLimited:
            raise
        except Exception:
            await self._budgets.sent(limits, booking)
            raise
        await self._budgets.sent(limits, booking)
        return result

    async def _room(
        self, limits: Sequence[RateLimit], card: Card, report: DispatchReport, lane: _Lane,
        *, ahead: float | None = None,
    ) -> Booking | None:
        """Book the channel's next slot (the call then waits `wait` seconds for it); if
        none comes within `book_ahead` (or `ahead`, if less), hold the channel for the
        rest of the round (its cards stay due and keep their order) and return None."""
        channel = (card.messenger, card.channel)
        if channel in report.held:
            report.deferred += 1
            return None
        within = self._book_ahead if ahead is None else min(ahead, self._book_ahead)
        booking = await self._budgets.book(limits, within=within)
        if booking.taken:
            if booking.wait > CONTINUE_WAIT:
                lane.over = True
            return booking
        report.held.add(channel)
        report.deferred += 1
        wait = booking.wait
        report.retry_in = wait if report.retry_in is None else min(report.retry_in, wait)
        return None

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
            await uow.cards.defer(card, until=now + RETRY_SURPRISE)
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


def extra_share(limits: Sequence[RateLimit]) -> list[RateLimit]:
    """The limits of an extra-tier post: each per-minute (or longer) limit again, at
    EXTRA_SHARE of its rate, under a key of the extra tier's own."""
    shares = [RateLimit(f"{limit.key}:extra", max(1, int(limit.rate * EXTRA_SHARE)),
                        limit.per_seconds)
              for limit in limits if limit.per_seconds >= 60]
    return [*limits, *shares]
