"""Incidents from the chat, the same in every messenger:

    /incidents                       the open incidents and those of the past week
    /incident N                      its figures, timeline and the cases to answer by hand
    /incident N ack                  acknowledge it: seen, being handled (who and when)
    /incident N answer TEXT          the official answer, once: announced and sent
    /incident N add 45,46            link cases; `remove 47` takes them out
    /incident N option TEXT          propose a solution on its escalation to the director
    /incident N resolve [FOLLOW-UP]  close it; the follow-up goes to every linked case
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from socialcare.bot import escalations, incidents
from socialcare.bot.announcements.service import MAX_TEXT
from socialcare.bot.cards import display_name
from socialcare.bot.errors import DomainError
from socialcare.bot.team import Person
from socialcare.bot.text import without_controls
from socialcare.deps import Deps
from socialcare.handlers.chat import ChatReply, describe_error, service

_ID = re.compile(r"#?([1-9][0-9]{0,17})")
_IDS = re.compile(r"#?[1-9][0-9]{0,17}(\s*[, ]\s*#?[1-9][0-9]{0,17})*")
RECENT = timedelta(days=7)
LISTED = 20
BY_HAND_SHOWN = 30
MAX_CASES_TEXT = 500  # the case numbers a form takes: a hundred or so
# The moments `/incident N` lists: the timeline's steps and a source's stopped replies.
TIMELINE = ("first_mention", "detected", "acknowledged", "answered", "resolved",
            "bulk_stopped")


async def figures(start: datetime, end: datetime, deps: Deps) -> incidents.IncidentFigures:
    """Return the figures of the incidents detected in [start, end)."""
    async with deps.uow() as uow:
        found, counts = await uow.incidents.detected_between(start, end)
    return incidents.figures(found, counts)


def figures_lines(f: incidents.IncidentFigures, deps: Deps) -> list[str]:
    """Return the report's lines on a period's incidents."""
    return incidents.figures_lines(f, deps.catalog)


def clock_text(at: datetime, zone: ZoneInfo) -> str:
    """Return a moment as the team reads it: "25.11 14:03"."""
    return at.astimezone(zone).strftime("%d.%m %H:%M")


async def run_incidents(deps: Deps) -> ChatReply:
    """List the open incidents and the recent ones."""
    text = deps.catalog
    async with deps.uow() as uow:
        found = await uow.incidents.list_recent(since=deps.clock.now() - RECENT, limit=LISTED)
        counts = {i.id: len(await uow.incidents.case_ids(i.id or 0)) for i in found}
    if not found:
        return ChatReply(text("incident.none"))
    lines = [text("incident.list_title")]
    for i in found:
        lines.append(text(f"incident.line_{i.state.value}", id=i.id,
                          about=incidents.describe(i, deps.team, text), cases=counts[i.id],
                          detected=clock_text(i.detected_at, deps.team.zone)))
    return ChatReply("\n".join(lines))


async def run_incident(args: str, person: Person, deps: Deps) -> ChatReply:
    """Show or change one incident."""
    text = deps.catalog
    words = args.split(maxsplit=2)
    found = _ID.fullmatch(words[0]) if words else None
    if found is None:
        return ChatReply(text("usage.incident"))
    incident_id = int(found[1])
    verb = words[1].lower() if len(words) > 1 else ""
    rest = words[2] if len(words) > 2 else ""
    if not verb:
        return ChatReply(await status(incident_id, deps))
    return await act(incident_id, verb, rest, person, deps)


def parse_cases(text: str) -> list[int] | None:
    """Return the case numbers written like "45, 46" or "#45 46", or None."""
    if not _IDS.fullmatch(text.strip()):
        return None
    return [int(m) for m in re.findall(r"[0-9]+", text)]


def form_problem(verb: str, written: str, deps: Deps) -> str | None:
    """Return what is wrong with the text a lead wrote in a button's form (`verb`: answer,
    add, remove, resolve) — an empty answer, case numbers that are not numbers, a text
    too long — or None: what a form can tell before anything is changed."""
    text = deps.catalog
    if verb in ("add", "remove"):
        if len(written) > MAX_CASES_TEXT or parse_cases(written) is None:
            return text("escalate.bad_cases")
        return None
    if len(written) > MAX_TEXT:
        return text("incident.too_long", limit=MAX_TEXT)
    if verb == "answer" and not written.strip():
        return text("incident.empty_answer")
    return None


def refusal(person: Person | None, deps: Deps) -> str | None:
    """Return why a person may not change incidents (not in the roster, not a lead), or
    None: the check the incident commands make, for the buttons before their forms."""
    if person is None:
        return deps.catalog("error.not_in_roster")
    try:
        incidents.lead(deps.team, person.id)
    except DomainError as error:
        return describe_error(error, deps)
    return None


async def act(incident_id: int, verb: str, rest: str, person: Person, deps: Deps) -> ChatReply:
    """Change an incident: `ack`, `answer`, `add`, `remove`, `option` or `resolve`, with
    the rest of the command (or a form's text); the commands, the buttons' forms and the
    console alike."""
    try:
        return await change(incident_id, verb, rest, person, deps)
    except DomainError as error:
        return ChatReply(describe_error(error, deps))


async def change(incident_id: int, verb: str, rest: str, person: Person,
                 deps: Deps) -> ChatReply:
    """Run `act`'s change, raising the service's refusal (DomainError) for the caller to
    tell: the console answers it with a 400 where the chat just says it."""
    rest = without_controls(rest)
    text = deps.catalog
    if verb == "ack":
        await incidents.acknowledge(incident_id, actor=person.id, **service(deps))
        deps.wake()
        return ChatReply(text("incident.acknowledged", id=incident_id))
    if verb == "answer":
        if not rest.strip():
            return ChatReply(text("usage.incident"))
        await incidents.answer(incident_id, rest, actor=person.id, **service(deps))
        deps.wake()
        return ChatReply(text("incident.answered", id=incident_id))
    if verb in ("add", "remove"):
        case_ids = parse_cases(rest)
        if case_ids is None:
            return ChatReply(text("usage.incident"))
        run = incidents.add_cases if verb == "add" else incidents.remove_cases
        changed = await run(incident_id, case_ids, actor=person.id, **service(deps))
        deps.wake()
        return ChatReply(text("incident.added" if verb == "add" else "incident.removed",
                              id=incident_id,
                              cases=", ".join(f"#{c}" for c in changed.case_ids) or "—"))
    if verb == "option":
        async with deps.uow() as uow:
            escalation_id = (await uow.incidents.get(incident_id)).escalation_id
        if escalation_id is None or not rest.strip():
            return ChatReply(text("usage.incident"))
        await escalations.add_option(escalations.AddOption(escalation_id, person.id, rest),
                                     **service(deps))
        deps.wake()
        return ChatReply(text("command.noted", id=escalation_id))
    if verb == "resolve":
        await incidents.resolve(incident_id, rest, actor=person.id, **service(deps))
        deps.wake()
        return ChatReply(text("incident.resolved", id=incident_id))
    return ChatReply(text("usage.incident"))


async def status(incident_id: int, deps: Deps) -> str:
    """Return an incident's figures, timeline and the cases agents answer by hand."""
    text, zone = deps.catalog, deps.team.zone
    async with deps.uow() as uow:
        incident = await uow.incidents.get(incident_id)
        replies = await uow.incidents.replies(incident_id)
        timeline = await uow.incidents.events_for(incident_id)
    about = incidents.describe(incident, deps.team, text)
    lines = [text("incident.status", id=incident_id, about=about,
                  state=text(f"incident.state.{incident.state.value}"), cases=len(replies))]
    for event in timeline:
        if event.kind in TIMELINE:
            lines.append(text(f"incident.event_{event.kind}", time=clock_text(event.at, zone),
                              who=display_name(event.actor, deps.team, text),
                              **{k: v for k, v in event.data.items() if k == "source"}))
    sent = sorted(c for c, r in replies.items() if r == incidents.Reply.SENT)
    by_hand = sorted(c for c, r in replies.items() if r == incidents.Reply.BY_HAND)
    if incident.answer is not None:
        lines.append(text("incident.replies", sent=len(sent), by_hand=len(by_hand)))
    unsure = sorted({int(e.data["case"]) for e in timeline if e.kind == "send_unsure"})
    if unsure:
        lines.append(text("incident.unsure", cases=_listed(unsure)))
    if by_hand:
        lines.append(text("incident.by_hand", cases=_listed(by_hand)))
        lines.append(incident.answer or "")
    return "\n".join(lines)


def _listed(case_ids: list[int]) -> str:
    shown = ", ".join(f"#{c}" for c in case_ids[:BY_HAND_SHOWN])
    more = len(case_ids) - BY_HAND_SHOWN
    return shown + (f" (+{more})" if more > 0 else "")
