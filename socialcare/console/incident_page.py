"""An incident's page: what surged, its timeline, the official answer, and every linked
case with how the answer reached it (sent, or to answer by hand). A shift lead also
acknowledges, answers, adds and takes out cases and resolves it here — through the code
`/incident N …` runs, with its roster check; everyone else reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from socialcare.bot import incidents
from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.cards import render_card
from socialcare.bot.errors import DomainError
from socialcare.bot.incidents import Incident, IncidentEvent
from socialcare.bot.team import Person
from socialcare.bot.text import without_controls
from socialcare.console.pages import Flash
from socialcare.deps import Deps
from socialcare.handlers import incidenting
from socialcare.handlers.chat import describe_error

EXCERPT = 200
SHOWN = 500
# Moments of the messages' bookkeeping, not of the incident.
_UNSHOWN = ("posted", "recounted")
# What a lead does on the page: the verbs of `/incident N …` (the form's field: its text).
ACTIONS = ("ack", "answer", "add", "remove", "resolve")


@dataclass(frozen=True)
class IncidentCaseLine:
    """One linked case, as the page lists it."""

    case_id: int
    title: str
    state: str
    sla: str
    reply: str  # "sent", "by_hand", "closed", "" (not yet)
    excerpt: str  # raw: the template escapes


@dataclass(frozen=True)
class IncidentPage:
    """Everything the incident page shows."""

    incident: Incident
    about: str
    timeline: list[IncidentEvent]
    cases: list[IncidentCaseLine]


@dataclass(frozen=True)
class Banner:
    """An open incident, as the wallboard's banner names it, with its cases now."""

    id: int
    about: str
    cases: int


async def banners(deps: Deps) -> list[Banner]:
    """Return the open incidents for the wallboard's banner."""
    async with deps.reads() as uow:
        found = [(i, len(await uow.incidents.case_ids(i.id or 0)))
                 for i in await uow.incidents.list_open()]
    return [Banner(i.id or 0, incidents.describe(i, deps.team, deps.catalog), n)
            for i, n in found]


async def incident_page(incident_id: int, deps: Deps) -> IncidentPage:
    """Read an incident, its timeline and its cases (raises IncidentNotFound)."""
    async with deps.uow() as uow:
        incident = await uow.incidents.get(incident_id)
        replies = await uow.incidents.replies(incident_id)
        timeline = await uow.incidents.events_for(incident_id)
        case_ids = sorted(replies)[:SHOWN]
        found = await uow.cases.get_many(case_ids)
        firsts = await uow.mentions.first_of(case_ids)
    now = deps.clock.now()
    lines = []
    for case_id in case_ids:
        case = found.get(case_id)
        if case is None:
            continue
        first = firsts.get(case_id)
        view = render_card(case, first, [], team=deps.team, catalog=deps.catalog, now=now,
                           can_publish=False)
        lines.append(IncidentCaseLine(
            case_id=case_id, title=view.title, state=view.state_text, sla=view.sla.text,
            reply=replies.get(case_id) or "",
            excerpt=shared_excerpt(first.text if first else None, EXCERPT)))
    about = incidents.describe(incident, deps.team, deps.catalog)
    return IncidentPage(incident=incident, about=about,
                        timeline=[e for e in timeline if e.kind not in _UNSHOWN], cases=lines)


def may_run(person: Person, deps: Deps) -> bool:
    """Tell whether a person runs incidents (the roster check of `/incident N …`)."""
    return incidenting.refusal(person, deps) is None


async def run(incident_id: int, action: str, form: Mapping[str, Any], person: Person,
              deps: Deps) -> Flash:
    """Do what a lead's form on the incident page asks (`action`: one of ACTIONS, its
    text in the field `text`) as `/incident N action text` does; say how it went."""
    written = form.get("text", "")
    # Control characters go first, as in the chat's forms: "\x00" is no answer.
    written = without_controls(written if isinstance(written, str) else "")
    problem = incidenting.refusal(person, deps)
    if problem is None and action != "ack":
        problem = incidenting.form_problem(action, written, deps)
    if problem is not None:
        return Flash(problem, ok=False)
    try:
        done = await incidenting.change(incident_id, action, written, person, deps)
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False)
    return Flash(done.text)
