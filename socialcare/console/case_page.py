"""A case's page: its thread, every event, its cards and escalation; and its actions,
carried out by the same commands as the chat's buttons and forms."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialcare.bot import cases, handoffs
from socialcare.bot import escalations as esc
from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.announcements.official import OfficialAnswers
from socialcare.bot.answers.phones import mask_phones
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.cards import Button, CardView, display_name, render_card, warning_from
from socialcare.bot.errors import DomainError
from socialcare.bot.escalations import Category, Escalation
from socialcare.bot.model import Card, Event, EventKind, Mention
from socialcare.bot.team import Person
from socialcare.bot.understanding import topics
from socialcare.console.pages import Flash, local_time
from socialcare.deps import Deps
from socialcare.handlers import escalating
from socialcare.handlers.chat import describe_error, service
from socialcare.handlers.commands import run_action

# The buttons that act at once, as on a card.
ONE_CLICK = (ActionKind.CLAIM, ActionKind.RELEASE, ActionKind.ANSWERED, ActionKind.RESOLVE,
             ActionKind.DISMISS, ActionKind.HAND_BACK)
# What the chat's commands say after the same action.
_DONE = {ActionKind.CLAIM: "command.claimed", ActionKind.RESOLVE: "command.resolved"}
# Event details worth showing, in this order; each is named by `console.detail.<key>`.
_DETAILS = ("text", "reason", "team", "note", "holder", "url", "topics")


@dataclass(frozen=True)
class Detail:
    """A detail of an event: what it is, its value, and a link if it is one."""

    label: str
    value: str
    href: str | None = None


@dataclass(frozen=True)
class EventLine:
    """One event of the case, as the page lists it."""

    at: str
    who: str
    what: str
    details: list[Detail]


@dataclass(frozen=True)
class CardLine:
    """Where a card of the case is, and whether it shows the case as it is."""

    messenger: str
    channel: str
    status: str


@dataclass(frozen=True)
class CasePage:
    """Everything the case page shows."""

    view: CardView
    mark: str  # moves with what the page shows: see `SqlConsoleRepository.case_mark`
    warn: str | None
    thread: list[Mention]
    events: list[EventLine]
    cards: list[CardLine]
    escalation: Escalation | None
    one_click: list[tuple[ActionKind, str, str | None]]
    can_reply: bool
    can_escalate: bool
    can_hand_off: bool
    can_set_topics: bool


def _event_line(event: Event, deps: Deps) -> EventLine:
    text = deps.catalog
    data = event.data
    what = text(f"console.event.{event.kind.value}")
    if event.kind is EventKind.SLA_POINT:
        what = _sla_point(data, deps)
    details = [_detail(key, data[key], deps) for key in _DETAILS
               if key in data and data[key] not in (None, "")]
    return EventLine(at=local_time(event.at, deps, seconds=True),
                     who=display_name(event.actor, deps.team, text), what=what,
                     details=details)


def _sla_point(data: dict[str, Any], deps: Deps) -> str:
    """Say which SLA point fell due, in the team's language (the event keeps no words)."""
    key = f"console.sla_point.{data.get('clock')}_{data.get('point')}"
    if not deps.catalog.has(key):
        return deps.catalog("console.event.sla_point")
    return deps.catalog(key, percent=data.get("percent", ""),
                        minutes=data.get("minutes_over", ""))


def _detail(key: str, value: object, deps: Deps) -> Detail:
    text = deps.catalog
    label = text(f"console.detail.{key}")
    if key == "holder":
        return Detail(label, display_name(str(value), deps.team, text))
    if key == "team":
        team = deps.team.second_line_team(str(value))
        return Detail(label, team.title if team else str(value))
    if key == "url":
        url = str(value)
        safe = url.startswith(("https://", "http://"))
        return Detail(label, text("card.original") if safe else url, url if safe else None)
    return Detail(label, mask_phones(str(value)))


def _channel_name(card: Card, deps: Deps) -> str:
    team = deps.team
    channels = [*team.channels, *team.escalation.channels,
                *(c for t in team.second_line for c in t.channels)]
    found = next((c for c in channels
                  if c.messenger == card.messenger and c.id == card.channel), None)
    return found.name if found and found.name else card.channel


def _card_line(card: Card, deps: Deps) -> CardLine:
    text = deps.catalog
    if card.message_id is None:
        status = text("console.case.card_pending")
    elif card.synced_seq >= card.change_seq:
        status = text("console.case.card_in_step", time=local_time(card.posted_at, deps))
    else:
        status = text("console.case.card_behind", time=local_time(card.posted_at, deps))
    return CardLine(messenger=card.messenger.capitalize(), channel=_channel_name(card, deps),
                    status=status)


async def case_page(case_id: int, person: Person, deps: Deps) -> CasePage:
    """Read a case for its page (raises CaseNotFound)."""
    async with deps.uow() as uow:
        # The mark first: a change landing while the page is read shows as a change.
        mark = await uow.console.case_mark(case_id)
        case = await uow.cases.get(case_id)
        thread = await uow.mentions.for_case(case_id)
        events = await uow.events.for_case(case_id)
        cards = await uow.cards.for_case(case_id)
        escalation = (await uow.escalations.latest_for_cases([case_id])).get(case_id)
        answers = OfficialAnswers(await uow.announcements.in_force(deps.clock.now()),
                                  now=deps.clock.now())
    # The console is shared: customers' phone numbers show masked, as on shared cards.
    thread = [dataclasses.replace(m, text=mask_phones(m.text)) for m in thread]
    customer = [m for m in thread if not m.from_brand]
    official = answers.for_case(customer[0].text, case.topics) \
        if customer and case.is_open else None
    view = render_card(case, customer[0] if customer else None, events, team=deps.team,
                       catalog=deps.catalog, now=deps.clock.now(),
                       can_publish=case.source in deps.publishers, escalation=escalation,
                       official=official)
    offered = {button.action.kind: button for button in view.buttons}
    works = person.works_cases
    if case.handoff_team is not None and (works or person.team == case.handoff_team):
        # On a card this button is in the second-line team's channel only.
        offered[ActionKind.HAND_BACK] = Button(CaseAction(ActionKind.HAND_BACK, case_id),
                                               deps.catalog("button.handback"), "primary")
    warn = warning_from(case, deps.team.sla.for_tier(case.tier))
    return CasePage(
        view=view, mark=mark, warn=warn.isoformat() if warn else None, thread=thread,
        events=[_event_line(e, deps) for e in events],
        # A card for a messenger that is not set up will never be posted: not shown.
        cards=[_card_line(c, deps) for c in cards
               if c.message_id is not None or c.messenger in deps.messengers],
        escalation=escalation,
        one_click=[(kind, offered[kind].label, offered[kind].style)
                   for kind in ONE_CLICK
                   if kind in offered and (works or kind is ActionKind.HAND_BACK)],
        can_reply=works and ActionKind.REPLY in offered,
        can_escalate=works and ActionKind.ESCALATE in offered,
        can_hand_off=works and ActionKind.HAND_OFF in offered,
        can_set_topics=works and bool(deps.team.topics),
    )


async def act(case_id: int, kind: str, form: dict[str, Any], person: Person,
              deps: Deps) -> Flash:
    """Carry out an action from the case page; say how it went."""
    text = deps.catalog
    try:
        action = ActionKind(kind)
    except ValueError:
        return Flash(text("error.unknown_button"), ok=False)
    if action in ONE_CLICK:
        reply = await run_action(CaseAction(action, case_id), person, deps)
        if reply is not None:
            return Flash(reply.text, ok=False)
        done = _DONE.get(action)
        return Flash(text(done, id=case_id) if done else text("click.done"))
    if action is ActionKind.REPLY:
        return await _reply(case_id, form, person, deps)
    if action is ActionKind.ESCALATE:
        return await _escalate(case_id, form, person, deps)
    if action is ActionKind.HAND_OFF:
        return await _run(handoffs.hand_off(handoffs.HandOff(
            case_id, person.id, str(form.get("team", "")), str(form.get("note", ""))),
            **service(deps)), text("click.done"), deps)
    if action is ActionKind.TOPIC:
        chosen = form.get("topic", [])
        names = tuple(str(n) for n in (chosen if isinstance(chosen, list) else [chosen]))
        return await _run(topics.set_topics(topics.SetTopics(case_id, person.id, names),
                                            **service(deps)), text("click.done"), deps)
    return Flash(text("error.unknown_button"), ok=False)


async def _reply(case_id: int, form: dict[str, Any], person: Person, deps: Deps) -> Flash:
    written = str(form.get("text", "")).strip()
    saved = str(form.get("saved", ""))
    official = str(form.get("announcement", ""))
    replies = deps.team.saved_replies
    chosen = replies[int(saved)] if saved.isdigit() and int(saved) < len(replies) else None
    if not written and chosen is not None:
        written = chosen.text
    if not written:
        return Flash(deps.catalog("reply.empty"), ok=False)
    announcement_id = int(official) if official.isdigit() and len(official) <= 18 else None
    picture = None
    if chosen is not None and chosen.image is not None:
        image = Path(chosen.image)
        picture = Picture(image.name, await asyncio.to_thread(image.read_bytes))
    try:
        changed = await cases.reply(
            cases.Reply(case_id, person.id, written, announcement_id, picture=picture),
            publishers=deps.publishers, **service(deps))
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False)
    deps.wake()
    if picture is not None and not any(e.data.get("picture") for e in changed.events):
        return Flash(deps.catalog("reply.sent_text_only", id=case_id,
                                  source=changed.case.source))
    return Flash(deps.catalog("reply.sent", id=case_id))


async def _escalate(case_id: int, form: dict[str, Any], person: Person, deps: Deps) -> Flash:
    text = deps.catalog
    more = str(form.get("more", "")).strip()
    try:
        others = escalating.parse_cases(more) if more else ()
    except escalating.BadCommand:
        return Flash(text("escalate.bad_cases"), ok=False)
    try:
        category = Category(str(form.get("category", "")))
    except ValueError:
        return Flash(text("escalate.bad_category"), ok=False)
    try:
        escalation = await esc.escalate(esc.Escalate(
            case_ids=(case_id, *others), actor=person.id, category=category,
            problem=str(form.get("problem", "")), director=str(form.get("director", "")),
            options=tuple(line.strip() for line in str(form.get("options", "")).splitlines()
                          if line.strip()),
        ), **service(deps))
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False)
    deps.wake()
    return Flash(text("command.escalated", id=escalation.id,
                      director=display_name(escalation.director, deps.team, text),
                      category=text(f"category.{category.value}")))


async def _run(command: Awaitable[object], done: str, deps: Deps) -> Flash:
    """Run a domain command; on success wake the cards and say `done`."""
    try:
        await command
    except DomainError as error:
        return Flash(describe_error(error, deps), ok=False)
    deps.wake()
    return Flash(done)
