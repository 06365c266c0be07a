"""What an escalation's card says to its director, independent of any messenger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot.actions import EscalationAction, EscalationActionKind
from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.cards import display_name
from socialcare.bot.catalog import Catalog
from socialcare.bot.escalations import (
    Category,
    Escalation,
    EscalationEvent,
    EscalationState,
)
from socialcare.bot.model import Case, Mention
from socialcare.bot.team import Team

COMMENTS = 5
CASES_SHOWN = 10


@dataclass(frozen=True)
class EscalationButton:
    """A button of an escalation card."""

    action: EscalationAction
    label: str
    style: str | None = None


@dataclass(frozen=True)
class LinkedCase:
    """A case behind an escalation, as its card lists it."""

    case_id: int
    label: str  # "#12 · Instagram · Kcell"
    excerpt: str  # the customer's first words, raw
    url: str | None


@dataclass(frozen=True)
class EscalationView:
    """Everything an escalation card shows; adapters lay it out and escape it."""

    escalation_id: int
    title: str  # "🔴 Critical · escalation #3"
    category: Category
    problem: str  # raw: written by an agent, may quote a customer
    options: tuple[str, ...]  # raw
    cases: tuple[LinkedCase, ...]
    more_cases: int
    # The cases past those listed: "… and 5 more: #31, #32, …" (None when all are listed).
    more_text: str | None
    # The console's list of every case of the escalation, when the console has an address.
    all_cases_url: str | None
    all_cases_label: str
    raised_text: str
    director_text: str
    state: EscalationState
    state_text: str
    decision: str | None  # raw
    comments: tuple[str, ...]  # raw
    buttons: tuple[EscalationButton, ...]
    problem_label: str
    options_label: str
    cases_label: str


_ICONS = {Category.CRITICAL: "🔴", Category.INSIGHT: "💡", Category.POSITIVE: "🌟"}


def render_escalation(
    escalation: Escalation,
    events: Sequence[EscalationEvent],
    cases: Mapping[int, Case],
    firsts: Mapping[int, Mention],
    *,
    team: Team,
    catalog: Catalog,
    now: datetime,
    for_director: bool = True,
    cases_url: str | None = None,
) -> EscalationView:
    """Build the card of an escalation; a director it has passed from sees it without
    the director's buttons (`for_director` False). `cases_url` is where every case of
    it is listed (the console), for the cases the card has no room for."""
    e = escalation
    assert e.id is not None
    text = catalog
    zone = team.zone

    def clock(at: datetime) -> str:
        local = at.astimezone(zone)
        same_day = local.date() == now.astimezone(zone).date()
        return local.strftime("%H:%M" if same_day else "%d.%m %H:%M")

    linked = []
    for case_id in e.case_ids[:CASES_SHOWN]:
        case, first = cases.get(case_id), firsts.get(case_id)
        linked.append(LinkedCase(
            case_id=case_id,
            label=text("card.title", id=case_id, platform=case.platform if case else "?",
                       brand=case.brand if case else "?"),
            excerpt=shared_excerpt(first.text if first else None, 120),
            url=first.url if first else None,
        ))
    rest = e.case_ids[CASES_SHOWN:]
    who = display_name(e.director, team, text)
    if e.state is EscalationState.OPEN:
        state_text = text("escalation.waiting", who=who)
    elif e.state is EscalationState.ACKNOWLEDGED:
        state_text = text("escalation.acknowledged", who=who,
                          time=clock(e.acknowledged_at or now))
    elif e.state is EscalationState.DECIDED:
        state_text = text("escalation.decided", who=display_name(e.decided_by or "", team, text),
                          time=clock(e.decided_at or now))
    else:
        state_text = text("escalation.closed", time=clock(e.closed_at or now))
    comments = [
        text("escalation.comment", time=clock(ev.at), who=display_name(ev.actor, team, text),
             text=ev.data.get("text", ""))
        for ev in events if ev.kind == "commented"
    ][-COMMENTS:]
    return EscalationView(
        escalation_id=e.id,
        title=text("escalation.title", icon=_ICONS[e.category], id=e.id,
                   category=text(f"category.{e.category.value}")),
        category=e.category,
        problem=e.problem,
        options=e.options,
        cases=tuple(linked),
        more_cases=len(rest),
        more_text=text("escalation.more_cases", count=len(rest),
                       ids=", ".join(f"#{case_id}" for case_id in rest)) if rest else None,
        all_cases_url=cases_url,
        all_cases_label=text("escalation.all_cases", count=len(e.case_ids)),
        raised_text=text("escalation.raised", who=display_name(e.raised_by, team, text),
                         time=clock(e.raised_at)),
        director_text=text("escalation.director", who=who),
        state=e.state,
        state_text=state_text,
        decision=e.decision,
        comments=tuple(comments),
        buttons=tuple(b for b in _buttons(e, text)
                      if for_director or b.action.kind is EscalationActionKind.COMMENT),
        problem_label=text("escalation.problem"),
        options_label=text("escalation.options"),
        cases_label=text("escalation.cases"),
    )


def _buttons(e: Escalation, text: Catalog) -> list[EscalationButton]:
    assert e.id is not None
    kinds = EscalationActionKind
    buttons: list[EscalationButton] = []

    def add(kind: EscalationActionKind, label: str, style: str | None = None,
            arg: int | None = None) -> None:
        buttons.append(EscalationButton(EscalationAction(kind, e.id or 0, arg), label, style))

    if e.state is EscalationState.OPEN:
        add(kinds.ACKNOWLEDGE, text("button.acknowledge"), "primary")
    if e.state in (EscalationState.OPEN, EscalationState.ACKNOWLEDGED):
        for number, _ in enumerate(e.options[:9], start=1):
            add(kinds.DECIDE, text("button.decide_option", number=number), arg=number)
        add(kinds.WRITE_DECISION, text("button.write_decision"))
        add(kinds.REASSIGN, text("button.reassign"), arg=0)
    if e.state is EscalationState.DECIDED:
        add(kinds.CLOSE, text("button.close"))
    if e.state is not EscalationState.CLOSED:
        add(kinds.COMMENT, text("button.comment"))
    return buttons
