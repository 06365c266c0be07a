"""The official answer and the closing follow-up, sent to each case of an incident.

Bulk replies go through each case's source's reply path where the source takes them
(`incident_replies`), within the source's hourly cap, earliest deadline first; the
other cases are listed for agents with the text ready to copy. A platform's anti-spam
answer stops its source's bulk sending for the incident.

Publishing a reply is the one step that cannot be repeated safely: a customer must
not get the answer twice. So a send is taken first (`sending`, its time the lease),
marked `publishing` just before the call to the platform, and its outcome recorded
after. A process that stops mid-send leaves the case taken; once the lease has run
out (`recover`), a send that never reached the call is taken again, and one that may
have reached the platform is looked for in the case's record — the reply recorded as
the team's answer, or the platform's copy of it delivered back. Found, it was sent;
not found, nobody can tell, and the case goes to the agents, flagged, rather than
risk a second copy.

Closing: once the lead resolves the incident, each linked case gets the follow-up the
same way (sent, it is the team's answer on that case), and then every linked case is
resolved, answered or not. A case nobody answered is resolved by the incident's
resolution: its event says so (`unanswered`), it gets no reaction time, and its SLA
stands as it was (missed once its deadline passed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from socialcare.bot import cases as cases_module
from socialcare.bot import lifecycle
from socialcare.bot.errors import DomainError, InvalidTransition
from socialcare.bot.incidents import Incident, IncidentEvent, Reply, Send
from socialcare.bot.model import SYSTEM, Case, Event, EventKind, Mention
from socialcare.bot.ports import ANTI_SPAM, Clock, Publisher, PublishFailed, UnitOfWork
from socialcare.bot.team import Team

# Longer than a reply's call to a platform takes, retries included; a send older than
# this was left by a process that stopped.
SEND_LEASE = timedelta(minutes=2)
# A platform's clock may run a little behind ours.
_CLOCK_SKEW = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


@dataclass
class Delivery:
    """What one pass of bulk replies (or of closing) did."""

    sent: list[int] = field(default_factory=list)
    by_hand: list[int] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # sources whose bulk sending stopped
    resolved: list[int] = field(default_factory=list)  # cases closed with their incident
    requeued: list[int] = field(default_factory=list)  # stale sends taken again
    unsure: list[int] = field(default_factory=list)  # stale sends nobody can tell about


def _bulk_allowed(team: Team, source_name: str, publishers: Mapping[str, Publisher]) -> bool:
    source = team.source(source_name)
    return source is not None and source.incident_replies and source_name in publishers


def went_out(text: str, *, since: datetime, thread: Sequence[Mention],
             events: Sequence[Event]) -> datetime | None:
    """Return when the reply `text`, begun at `since`, reached the customer by the case's
    record — the team's answer recorded with it, or the platform's copy delivered
    back — or None if the record has no trace of it."""
    text = text.strip()
    earliest = since - _CLOCK_SKEW
    for event in events:
        if event.kind is EventKind.AGENT_MESSAGE and event.at >= earliest \
                and str(event.data.get("text", "")).strip() == text:
            return event.at
    for mention in thread:
        if mention.from_brand and mention.published_at >= earliest \
                and mention.text.strip() == text:
            return mention.published_at
    return None


async def recover(*, uow: UnitOfWork, clock: Clock) -> Delivery:
    """Settle the sends whose lease ran out (their process stopped): one that never
    reached the platform is taken again; one that may have is sent if the case's record
    shows it, else it goes to the agents, flagged (the follow-up: marked unsure)."""
    done = Delivery()
    now = clock.now()
    async with uow:
        stale = await uow.incidents.stale_sends(before=now - SEND_LEASE)
    for send in stale:
        async with uow:
            if send.status is Reply.SENDING:
                if await uow.incidents.requeue(send):
                    done.requeued.append(send.case_id)
                await uow.commit()
                continue
            incident = await uow.incidents.get(send.incident_id)
            text = incident.answer if send.send is Send.ANSWER else incident.follow_up
            at = went_out(text or "", since=send.since,
                          thread=await uow.mentions.for_case(send.case_id),
                          events=await uow.events.for_case(send.case_id))
            outcome = Reply.SENT if at is not None else \
                Reply.BY_HAND if send.send is Send.ANSWER else Reply.UNSURE
            if await uow.incidents.end_send(send.incident_id, send.case_id, send.send,
                                            outcome, at=at, since=send.since):
                if at is None:
                    done.unsure.append(send.case_id)
                    await uow.incidents.add_events([IncidentEvent(
                        send.incident_id, "send_unsure", SYSTEM, now,
                        {"case": send.case_id, "send": send.send.value})])
                else:
                    done.sent.append(send.case_id)
            await uow.commit()
    return done


async def _stopped(uow: UnitOfWork, incident_id: int) -> set[str]:
    return {e.data["source"] for e in await uow.incidents.events_for(incident_id)
            if e.kind == "bulk_stopped"}


def _by_deadline(cases: Mapping[int, Case], now: datetime) -> list[Case]:
    return sorted(cases.values(), key=lambda c: (c.response_due_at or now, c.id or 0))


async def deliver(*, uow: UnitOfWork, clock: Clock, team: Team,
                  publishers: Mapping[str, Publisher]) -> Delivery:
    """Send the official answer to each linked case not yet answered through it —
    earliest deadline first, through its source's reply path where the source allows
    bulk replies, within the source's hourly cap — and list the rest for agents. A
    platform's anti-spam answer stops its source's bulk sending for the incident."""
    done = Delivery()
    now = clock.now()
    async with uow:
        work = []
        for incident in await uow.incidents.list_open():
            if incident.answer is None:
                continue
            assert incident.id is not None
            pending = [c for c, reply in (await uow.incidents.replies(incident.id)).items()
                       if reply is None]
            work.append((incident, await uow.cases.get_many(pending),
                         await _stopped(uow, incident.id)))
    for incident, cases, stopped in work:
        assert incident.id is not None and incident.answer and incident.answered_by
        for case in _by_deadline(cases, now):
            assert case.id is not None
            if not case.is_open:
                async with uow:
                    await uow.incidents.set_send(incident.id, case.id, Send.ANSWER, Reply.CLOSED)
                    await uow.commit()
                continue
            outcome = await _send(incident, case, Send.ANSWER, incident.answer,
                                  actor=incident.answered_by,
                                  announcement=incident.announcement_id, stopped=stopped,
                                  uow=uow, clock=clock, team=team, publishers=publishers,
                                  done=done)
            if outcome is Reply.SENT:
                done.sent.append(case.id)
            elif outcome is Reply.BY_HAND:
                done.by_hand.append(case.id)
    return done


async def _send(incident: Incident, case: Case, send: Send, text: str, *, actor: str,
                announcement: int | None, stopped: set[str], uow: UnitOfWork, clock: Clock,
                team: Team, publishers: Mapping[str, Publisher], done: Delivery
                ) -> Reply | None:
    """Publish `text` to one case if its source takes bulk replies now, and record the
    outcome: SENT; BY_HAND (the follow-up: SKIPPED) when it is not sent; None when
    another pass has the case, or a send that may have gone out is left to `recover`."""
    assert incident.id is not None and case.id is not None
    not_sent = Reply.BY_HAND if send is Send.ANSWER else Reply.SKIPPED
    source = team.source(case.source)
    now = clock.now()
    async with uow:
        capped = source is not None and await uow.incidents.sent_since(
            case.source, now - _HOUR) >= source.incident_replies_per_hour
        if not _bulk_allowed(team, case.source, publishers) or case.source in stopped \
                or capped:
            mine = await uow.incidents.set_send(incident.id, case.id, send, not_sent)
            await uow.commit()
            return not_sent if mine else None
        if not await uow.incidents.set_send(incident.id, case.id, send, Reply.SENDING, at=now):
            return None
        await uow.commit()
    began: list[datetime] = []

    async def publishing() -> None:
        # From here the reply may reach the customer whatever happens to this process.
        began.append(clock.now())
        async with uow:
            await uow.incidents.publishing(incident.id or 0, case.id or 0, send, at=began[0])
            await uow.commit()

    try:
        await cases_module.reply(
            cases_module.Reply(case.id, actor, text, announcement),
            uow=uow, clock=clock, team=team, publishers=publishers, before_publish=publishing)
    except DomainError as error:
        cause = error.__cause__
        if began and not isinstance(cause, PublishFailed):
            return None  # published, then not recorded: `recover` looks for it
        if isinstance(cause, PublishFailed) and getattr(cause, "reason", None) == ANTI_SPAM:
            stopped.add(case.source)
            done.stopped.append(case.source)
            async with uow:
                await uow.incidents.add_events([IncidentEvent(
                    incident.id, "bulk_stopped", SYSTEM, clock.now(),
                    {"source": case.source, "error": str(cause)[:300]})])
                await uow.commit()
        async with uow:
            await uow.incidents.end_send(incident.id, case.id, send, not_sent, at=None,
                                         since=began[0] if began else now)
            await uow.commit()
        return not_sent
    async with uow:
        await uow.incidents.end_send(incident.id, case.id, send, Reply.SENT, at=clock.now(),
                                     since=began[0])
        await uow.commit()
    return Reply.SENT


async def close_cases(*, uow: UnitOfWork, clock: Clock, team: Team,
                      publishers: Mapping[str, Publisher]) -> Delivery:
    """For resolved incidents: send the follow-up to each linked case whose source takes
    bulk replies, then resolve every linked case still open, answered or not."""
    done = Delivery()
    now = clock.now()
    async with uow:
        work = []
        for incident in await uow.incidents.closing():
            assert incident.id is not None
            unclosed = await uow.incidents.unclosed(incident.id)
            work.append((incident, await uow.cases.get_many(unclosed),
                         await uow.incidents.replies(incident.id, Send.FOLLOW_UP),
                         await _stopped(uow, incident.id)))
    for incident, cases, follow_ups, stopped in work:
        assert incident.id is not None
        actor = incident.resolved_by or SYSTEM
        for case in _by_deadline(cases, now):
            assert case.id is not None
            if case.is_open and incident.follow_up:
                status = follow_ups.get(case.id)
                if status in (Reply.SENDING, Reply.PUBLISHING):
                    continue  # under way, or left for `recover`
                if status is None:
                    outcome = await _send(incident, case, Send.FOLLOW_UP, incident.follow_up,
                                          actor=actor, announcement=None, stopped=stopped,
                                          uow=uow, clock=clock, team=team,
                                          publishers=publishers, done=done)
                    if outcome is None:
                        continue
                    if outcome is Reply.SENT:
                        done.sent.append(case.id)
            if await _close(incident, case.id, actor=actor, uow=uow, clock=clock, team=team):
                done.resolved.append(case.id)
    return done


async def _close(incident: Incident, case_id: int, *, actor: str, uow: UnitOfWork,
                 clock: Clock, team: Team) -> bool:
    """Resolve a linked case with its incident and mark it closed, in one transaction;
    a case closed meanwhile is only marked. Tell whether it was resolved here."""
    assert incident.id is not None
    incident_id = incident.id

    def apply(case: Case, at: datetime) -> list[Event]:
        return [lifecycle.close_with_incident(case, by=actor, at=at,
                                              policy=team.sla.for_tier(case.tier),
                                              incident=incident_id)]

    async def mark_closed(uow: UnitOfWork, case: Case, at: datetime) -> None:
        await uow.incidents.close(incident_id, case_id, at=at)

    try:
        await cases_module.change(case_id, apply, uow=uow, clock=clock, after=mark_closed)
    except InvalidTransition:
        async with uow:
            await uow.incidents.close(incident_id, case_id, at=clock.now())
            await uow.commit()
        return False
    return True
