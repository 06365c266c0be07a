"""An escalation's page: what it is about, where it stands, and every case it links —
the list its card points to when the card has no room for them all."""

from __future__ import annotations

from dataclasses import dataclass

from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.cards import render_card
from socialcare.bot.escalations import Escalation
from socialcare.deps import Deps

EXCERPT = 200


@dataclass(frozen=True)
class LinkedCaseLine:
    """One case of the escalation, as the page lists it."""

    case_id: int
    title: str  # "#12 · Instagram · Kcell"
    state: str
    sla: str
    excerpt: str  # the customer's first words, raw (the template escapes)
    url: str | None  # the original


@dataclass(frozen=True)
class EscalationPage:
    """Everything the escalation page shows."""

    escalation: Escalation
    cases: list[LinkedCaseLine]


async def escalation_page(escalation_id: int, deps: Deps) -> EscalationPage:
    """Read an escalation and all its cases (raises EscalationNotFound)."""
    async with deps.uow() as uow:
        escalation = await uow.escalations.get(escalation_id)
        found = await uow.cases.get_many(escalation.case_ids)
        firsts = await uow.mentions.first_of(escalation.case_ids)
    now = deps.clock.now()
    lines = []
    for case_id in escalation.case_ids:
        case = found.get(case_id)
        if case is None:
            continue
        first = firsts.get(case_id)
        view = render_card(case, first, [], team=deps.team, catalog=deps.catalog, now=now,
                           can_publish=False)
        lines.append(LinkedCaseLine(
            case_id=case_id, title=view.title, state=view.state_text, sla=view.sla.text,
            excerpt=shared_excerpt(first.text if first else None, EXCERPT),
            url=view.url))
    return EscalationPage(escalation=escalation, cases=lines)
