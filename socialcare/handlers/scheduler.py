"""The clock's ticks as domain commands: fire due SLA points and lapsed claims, keep
gauges current; and, each in a loop of its own beside them, watch for surges that
become incidents and post the scheduled reports and the digest.

Runs in every process that has the scheduler role; the database decides which
process fires a point, so any number of them may run.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from redis.exceptions import RedisError

from socialcare.bot import handoffs, incident_replies, incidents, sla, timers
from socialcare.bot.actions import IncidentAction, IncidentActionKind
from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.digest import Week, build_digest, digest_markdown, digest_summary, due_digest
from socialcare.bot.model import Event, EventKind, State, Tier
from socialcare.bot.ports import MessengerError, Note, NoteButton
from socialcare.bot.report_text import DEFAULT_BREAKDOWNS
from socialcare.bot.reports import due_reports
from socialcare.bot.team import Channel
from socialcare.bot.understanding import staffing
from socialcare.deps import Deps
from socialcare.handlers import background, reporting
from socialcare.storage.redis import lease

log = logging.getLogger(__name__)

# The longest sleep between sweeps: escalation reminders, webhooks, reports and points
# that another process brought forward are looked for at least this often. Points due
# sooner wake the sweep when they fall due.
TICK_SECONDS = 1.0
MIN_PAUSE_SECONDS = 0.01
# Long enough for a sweep; short enough that a crashed holder is replaced quickly.
LEASE_SECONDS = 15.0
# How often scheduled reports are looked for (each runs once; this only bounds the delay).
REPORTS_CHECK_SECONDS = 30.0
# How often the open-cases gauge is recounted.
GAUGE_SECONDS = 15.0
# After a failed tick (database away), wait longer each time, up to this.
MAX_BACKOFF_SECONDS = 30.0


async def tick(deps: Deps) -> list[Event]:
    """Fire the SLA points due now; log and count each.

    A Redis lease lets one scheduler sweep at a time, which saves the others the
    query; the database alone decides what fires, so without Redis every scheduler
    sweeps and still nothing fires twice.
    """
    try:
        async with lease(deps.redis, "sla-timers", seconds=LEASE_SECONDS) as held:
            if not held:
                return []
            return await _fire(deps)
    except RedisError as error:
        log.warning("SLA sweep without a lease, Redis is unavailable: %s", type(error).__name__)
        return await _fire(deps)


async def deliver_webhooks(deps: Deps) -> None:
    """Send the hand-offs waiting for the second line's ticket systems."""
    if deps.webhooks is None:
        return
    for delivery in await handoffs.deliver_webhooks(uow=deps.uow(), clock=deps.clock,
                                                    sender=deps.webhooks):
        log.info("hand-off of case #%s delivered to %s", delivery.body.get("case_id"),
                 delivery.url)


async def _fire(deps: Deps) -> list[Event]:
    for step in await timers.fire_escalations(uow=deps.uow(), clock=deps.clock,
                                              team=deps.team):
        log.info("escalation #%d %s (%s)", step.escalation_id, step.kind, step.data)
        deps.wake()
    events = await timers.fire_due(uow=deps.uow(), clock=deps.clock, config=deps.team.sla)
    zone = deps.team.zone
    for event in events:
        data = event.data
        if event.kind is EventKind.CLAIM_EXPIRED:
            log.info("claim of case #%d by %s expired: back in the queue", event.case_id,
                     data.get("holder"))
            continue
        deadline = sla.parse_deadline(data).astimezone(zone)
        late = f", fired {data['late_seconds']} s late" if data["late_seconds"] else ""
        log.info(
            "SLA %s: case #%d (%s tier), %s due %s%s",
            data["label"], event.case_id, data["tier"], data["clock"],
            deadline.strftime("%Y-%m-%d %H:%M %Z"), late,
        )
        deps.telemetry.sla_points.labels(data["tier"], data["clock"], data["point"]).inc()
    if events:
        deps.wake()
    return events


async def post_due_digest(deps: Deps) -> Week | None:
    """Post the directors' weekly digest once it is due; once per week, whichever
    process gets there first. Return the week posted."""
    now = deps.clock.now()
    week = due_digest(deps.team, now)
    # Not due, or nowhere to go yet: it goes out once a messenger of its channels is set up.
    channels = _reachable(deps.team.escalation.channels, deps)
    if week is None or not channels:
        return None
    async with deps.uow() as uow:
        mine = await uow.jobs.claim("digest", week.key, at=now)
        await uow.commit()
    if not mine:
        return None
    try:
        made = await build_digest(week, uow=deps.uow(), now=now)
        summary = digest_summary(made, team=deps.team, catalog=deps.catalog)
        agenda = digest_markdown(made, team=deps.team, catalog=deps.catalog).encode()
        for channel in channels:
            await deps.messengers[channel.messenger].post_file(
                channel.id, f"digest-{week.key}.md", agenda, Note(summary))
    except Exception:
        async with deps.uow() as uow:
            await uow.jobs.release("digest", week.key)
            await uow.commit()
        raise
    log.info("directors' digest for %s posted to %s", week.key, _names(channels))
    return week


def _reachable(channels: Sequence[Channel], deps: Deps) -> list[Channel]:
    """Return the channels whose messenger is set up."""
    return [channel for channel in channels if channel.messenger in deps.messengers]


def _names(channels: Sequence[Channel]) -> str:
    return ", ".join(f"{c.messenger} {c.name or c.id}" for c in channels)


async def post_due_reports(deps: Deps) -> list[str]:
    """Post the scheduled reports that are due, each once whichever process gets there
    first; return the jobs posted."""
    schedule = deps.team.reports
    channels = _reachable(schedule.channels, deps)
    if not channels:
        return []
    now = deps.clock.now()
    posted = []
    for due in due_reports(schedule, now=now, zone=deps.team.zone):
        async with deps.uow() as uow:
            mine = await uow.jobs.claim(due.job, due.key, at=now)
            await uow.commit()
        if not mine:
            continue
        try:
            reply = await reporting.report_reply(due.period, deps,
                                                 breakdowns=DEFAULT_BREAKDOWNS, csv=False)
            for channel in channels:
                messenger = deps.messengers[channel.messenger]
                await messenger.post_note(channel.id, Note(reply.text))
                for attached in reply.attachments:
                    await messenger.post_file(channel.id, attached.filename, attached.content,
                                              Note(attached.filename), image=attached.image)
        except Exception:
            async with deps.uow() as uow:
                await uow.jobs.release(due.job, due.key)
                await uow.commit()
            raise
        log.info("%s for %s posted to %s", due.job, due.key, _names(channels))
        posted.append(due.job)
    return posted


async def tell_of_language_gaps(deps: Deps) -> list[str]:
    """Tell the shift leads of waiting cases in a language nobody on shift answers."""
    told = await staffing.tell_leads_of_gaps(uow=deps.uow(), clock=deps.clock, team=deps.team)
    if told:
        log.info("shift leads told: nobody on shift answers in %s", ", ".join(told))
        deps.wake()
    return told


async def watch_incidents(deps: Deps) -> list[incidents.Incident]:
    """Open an incident for each surge, post it to the team channels, and link the new
    cases that match the open ones. A Redis lease lets one scheduler look at a time; the
    database's unique open incident per topic and place keeps it one without Redis."""
    try:
        async with lease(deps.redis, "incidents", seconds=LEASE_SECONDS) as held:
            if not held:
                return []
            return await _watch_incidents(deps)
    except RedisError as error:
        log.warning("incident check without a lease, Redis is unavailable: %s",
                    type(error).__name__)
        return await _watch_incidents(deps)


async def _watch_incidents(deps: Deps) -> list[incidents.Incident]:
    opened = await incidents.detect(uow=deps.uow(), clock=deps.clock, team=deps.team,
                                    text=deps.catalog)
    for incident in opened:
        log.info("incident #%s opened: %s", incident.id,
                 incidents.describe(incident, deps.team, deps.catalog))
    for incident in await _unposted(deps):
        await post_incident(incident, deps)
    joined = await incidents.join_new(uow=deps.uow(), clock=deps.clock, team=deps.team)
    for incident_id, case_ids in joined.items():
        log.info("incident #%d: %d new case(s) joined", incident_id, len(case_ids))
    await recount_incidents(deps)
    recovered = await incident_replies.recover(uow=deps.uow(), clock=deps.clock)
    if recovered.requeued:
        log.info("incident replies to case(s) %s, left by a stopped process before they "
                 "reached the platform, are queued again", recovered.requeued)
    if recovered.unsure:
        log.warning("incident replies to case(s) %s may or may not have gone out (a process "
                    "stopped mid-send): left to agents, not sent again", recovered.unsure)
    answered = await incident_replies.deliver(uow=deps.uow(), clock=deps.clock,
                                              team=deps.team, publishers=deps.publishers)
    closed = await incident_replies.close_cases(uow=deps.uow(), clock=deps.clock,
                                                team=deps.team, publishers=deps.publishers)
    for done, what in ((answered, "official answer"), (closed, "follow-up")):
        if done.sent or done.by_hand:
            log.info("incident %s: %d sent, %d for agents", what, len(done.sent),
                     len(done.by_hand))
        for source in done.stopped:
            log.warning("incident replies to %s stopped: the platform suspects spam", source)
    if closed.resolved:
        log.info("incident cases resolved with their incident: %d", len(closed.resolved))
    if opened or joined or answered.sent or answered.by_hand or closed.sent \
            or closed.resolved or recovered.sent or recovered.unsure:
        deps.wake()
    return opened


async def _unposted(deps: Deps) -> list[incidents.Incident]:
    async with deps.uow() as uow:
        return [i for i in await uow.incidents.list_open()
                if not any(e.kind == "posted" for e in await uow.incidents.events_for(i.id or 0))]


async def post_incident(incident: incidents.Incident, deps: Deps) -> None:
    """Post the incident to every team channel of both messengers, once each."""
    channels = _reachable(deps.team.channels, deps)
    assert incident.id is not None
    async with deps.uow() as uow:
        case_ids = await uow.incidents.case_ids(incident.id)
        firsts = await uow.mentions.first_of(case_ids[:deps.team.incidents.samples])
    note = incident_note(incident, deps, count=len(case_ids),
                         samples=[m.text for _, m in sorted(firsts.items())])
    messages: dict[str, str] = {}
    for channel in channels:
        period = f"{incident.id}:{channel.messenger}:{channel.id}"
        async with deps.uow() as uow:
            mine = await uow.jobs.claim("incident-card", period, at=deps.clock.now())
            await uow.commit()
        if not mine:
            continue
        try:
            messages[f"{channel.messenger}:{channel.id}"] = await deps.messengers[
                channel.messenger].post_note(channel.id, note)
        except Exception:
            async with deps.uow() as uow:
                await uow.jobs.release("incident-card", period)
                await uow.commit()
            raise
    # Where it was posted and the count it shows: the live count edits these messages.
    async with deps.uow() as uow:
        await uow.incidents.add_events([incidents.IncidentEvent(
            incident.id, "posted", "system", deps.clock.now(),
            {"channels": [f"{c.messenger}:{c.id}" for c in channels], "messages": messages,
             "count": len(case_ids), "acknowledged": incident.acknowledged_at is not None})])
        await uow.commit()


async def recount_incidents(deps: Deps) -> list[int]:
    """Edit each open incident's message in the team channels of both messengers when
    its number of linked cases changed since the message last showed it (cases joined,
    a lead added or took out some) or a lead acknowledged it (its button goes); return
    the incidents edited. At most one edit per
    message each incident check, so a surge costs few of the channels' edits."""
    samples = deps.team.incidents.samples
    work = []
    async with deps.uow() as uow:
        for incident in await uow.incidents.list_open():
            assert incident.id is not None
            messages: dict[str, str] = {}
            shown: tuple[object, bool] = (None, False)  # the count and the acknowledgement
            for event in await uow.incidents.events_for(incident.id):
                if event.kind == "posted":
                    messages.update(event.data.get("messages") or {})
                    shown = (event.data.get("count", shown[0]),
                             bool(event.data.get("acknowledged")))
                elif event.kind == "recounted":
                    shown = (event.data["count"], bool(event.data.get("acknowledged")))
            case_ids = await uow.incidents.case_ids(incident.id)
            if not messages or (len(case_ids), incident.acknowledged_at is not None) == shown:
                continue
            firsts = await uow.mentions.first_of(case_ids[:samples])
            work.append((incident, messages, len(case_ids),
                         [m.text for _, m in sorted(firsts.items())]))
    for incident, messages, count, texts in work:
        assert incident.id is not None
        note = incident_note(incident, deps, count=count, samples=texts)
        for place, message_id in messages.items():
            messenger_name, channel = place.split(":", 1)
            messenger = deps.messengers.get(messenger_name)
            if messenger is None:
                continue
            try:
                await messenger.update_note(channel, message_id, note)
            except MessengerError as error:
                # The next check tries again: the count is recorded only when all went.
                log.warning("incident #%d's message in %s %s not edited: %s", incident.id,
                            messenger_name, channel, error)
                break
        else:
            async with deps.uow() as uow:
                await uow.incidents.add_events([incidents.IncidentEvent(
                    incident.id, "recounted", "system", deps.clock.now(),
                    {"count": count, "acknowledged": incident.acknowledged_at is not None})])
                await uow.commit()
    return [incident.id or 0 for incident, *_ in work]


def incident_note(incident: incidents.Incident, deps: Deps, *, count: int,
                  samples: Sequence[str]) -> Note:
    """Return the incident's message with the lead's buttons: acknowledge (until someone
    has), answer, add or take out cases, resolve (each a form; `/incident N …` does the
    same)."""
    assert incident.id is not None
    kinds = [kind for kind in IncidentActionKind
             if kind is not IncidentActionKind.ACK or incident.acknowledged_at is None]
    return Note(incident_text(incident, deps, count=count, samples=samples), buttons=tuple(
        NoteButton(deps.catalog(f"button.incident_{kind.value}"),
                   IncidentAction(kind, incident.id).pack())
        for kind in kinds))


def incident_text(incident: incidents.Incident, deps: Deps, *, count: int,
                  samples: Sequence[str]) -> str:
    """Return the incident's message: what, how many, since when, what people write."""
    catalog, zone = deps.catalog, deps.team.zone
    lines = [catalog("incident.card", id=incident.id,
                     about=incidents.describe(incident, deps.team, catalog), count=count,
                     first=incident.first_mention_at.astimezone(zone).strftime("%H:%M"))]
    lines += [f"  “{shared_excerpt(text, 200)}”" for text in samples]
    lines.append(catalog("incident.commands", id=incident.id))
    return "\n".join(lines)


async def count_open(deps: Deps) -> None:
    """Refresh the gauges: open cases per tier, cases per state, the card queue's lag."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.console.fold_counts()
        await uow.commit()
    async with deps.uow() as uow:
        counts = await uow.cases.count_open()
        states = await uow.cases.count_by_state()
        oldest = await uow.cards.oldest_due(now, messengers=list(deps.messengers))
    for tier in Tier:
        deps.telemetry.open_cases.labels(tier.value).set(counts.get(tier, 0))
    for state in State:
        deps.telemetry.cases.labels(state.value).set(states.get(state, 0))
    deps.telemetry.queue_lag.set(0 if oldest is None else (now - oldest).total_seconds())


async def until_next_point(deps: Deps) -> float:
    """Return the seconds to sleep before the next sweep: until the next SLA point
    falls due, at most a tick."""
    async with deps.uow() as uow:
        at = await uow.cases.next_alert()
    if at is None:
        return TICK_SECONDS
    # A point already due that this sweep left (another scheduler holds the lease, or
    # it lost a race) is looked at again soon, without spinning.
    return min(TICK_SECONDS, max(MIN_PAUSE_SECONDS, (at - deps.clock.now()).total_seconds()))


async def _run(deps: Deps) -> None:
    backoff = TICK_SECONDS
    counted = 0.0
    loop = asyncio.get_running_loop()
    while True:
        background.stop_if_asked()
        await deps.foreground.give_way()  # the requests in flight first
        busy = False
        try:
            # A full sweep means more is due: sweep again at once, not a second later.
            busy = len(await tick(deps)) >= timers.BATCH
            await deliver_webhooks(deps)
            if loop.time() - counted >= GAUGE_SECONDS:
                await count_open(deps)
                counted = loop.time()
            backoff = TICK_SECONDS
            pause = 0.0 if busy else await until_next_point(deps)
        except Exception:
            background.stop_if_asked()
            log.exception("SLA tick failed; retrying in %.0f s", backoff)
            pause = backoff
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        await asyncio.sleep(pause)


async def _repeat(deps: Deps, what: str, work: Callable[[], Awaitable[object]], *,
                  every: float) -> None:
    """Do `work` every `every` seconds, beside the SLA sweep rather than in it (backing
    off while it fails): what it waits for — a surge's thousands of cases being linked,
    a report's charts, a chat's rate limit — keeps no point falling due waiting."""
    backoff = TICK_SECONDS
    while True:
        background.stop_if_asked()
        await deps.foreground.give_way()  # the requests in flight first
        try:
            await work()
            backoff, pause = TICK_SECONDS, every
        except Exception:
            background.stop_if_asked()
            log.exception("%s failed; retrying in %.0f s", what, backoff)
            pause = backoff
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        await asyncio.sleep(pause)


def _post_due(deps: Deps) -> Callable[[], Awaitable[None]]:
    """Return the round of the reports' loop: the scheduled reports (every
    REPORTS_CHECK_SECONDS) and the weekly digest once due."""
    loop = asyncio.get_running_loop()
    reports_checked = -math.inf  # at once, however short the uptime of the clock
    digest_done: Week | None = None  # spares the database a claim every second

    async def post_due() -> None:
        nonlocal reports_checked, digest_done
        if loop.time() - reports_checked >= REPORTS_CHECK_SECONDS:
            await post_due_reports(deps)
            await tell_of_language_gaps(deps)
            reports_checked = loop.time()
        if due_digest(deps.team, deps.clock.now()) != digest_done:
            digest_done = await post_due_digest(deps) or due_digest(
                deps.team, deps.clock.now())

    return post_due


def register(app: web.Application, deps: Deps) -> None:
    """Run the SLA timers, and beside them the incidents' watch and the scheduled reports
    (each a loop of its own: a surge is not kept waiting behind a report's charts
    either), for as long as the app runs."""
    background.run_while_serving(app, "scheduler", lambda: _run(deps))
    background.run_while_serving(app, "incidents", lambda: _repeat(
        deps, "incident check", lambda: watch_incidents(deps),
        every=deps.team.incidents.check_seconds))
    background.run_while_serving(app, "reports", lambda: _repeat(
        deps, "scheduled reports", _post_due(deps), every=TICK_SECONDS))
