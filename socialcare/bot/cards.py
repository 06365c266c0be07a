"""What a case's card says, independent of any messenger.

`render_card` turns a case, its first mention and its recent events into a
`CardView`; the Slack and Telegram adapters lay the view out (and escape every piece
of customer text). The view is deterministic: the same case at the same SLA step
gives an equal view, so a card is edited only when its view changed.

The SLA line moves in steps — every 5 minutes, each minute in the last 5, at the
breach, then in widening steps while overdue — so that 200 open cards do not
spend the messengers' edit budgets; the absolute deadline on every card keeps it
true between edits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.announcements.official import OfficialAnswer
from socialcare.bot.answers.phones import mask_phones, pretty_phone
from socialcare.bot.catalog import Catalog
from socialcare.bot.escalations import Escalation
from socialcare.bot.model import SYSTEM, Case, Event, EventKind, Mention, Priority, State
from socialcare.bot.sla import SlaPolicy
from socialcare.bot.team import SecondLineTeam, Team

HISTORY_LINES = 5
_HISTORY_KINDS = frozenset({
    EventKind.CLAIMED, EventKind.RELEASED, EventKind.CLAIM_EXPIRED, EventKind.AGENT_MESSAGE,
    EventKind.CUSTOMER_MESSAGE, EventKind.RESOLVED, EventKind.DISMISSED, EventKind.REOPENED,
    EventKind.ESCALATED, EventKind.HANDED_OFF, EventKind.HANDED_BACK,
    EventKind.TOPICS_CHANGED, EventKind.INCIDENT_JOINED, EventKind.INCIDENT_LEFT,
})
_MINUTE = timedelta(minutes=1)
# A rendering boundary is passed one second after it, so that the floor of the
# remaining minutes has really moved when the card is rendered again.
_JUST_AFTER = timedelta(seconds=1)


class SlaLevel(StrEnum):
    """How the SLA line looks: calm, warning, overdue, or settled (answered/closed)."""

    CALM = "calm"
    WARNING = "warning"
    OVERDUE = "overdue"
    SETTLED = "settled"


@dataclass(frozen=True)
class SlaLine:
    """The deadline and the time left, as the card shows them."""

    level: SlaLevel
    text: str  # "⏱ 10+ min left", "⚠ 3 min left", "🔴 overdue 7 min", "✅ answered in 4 min"
    deadline_at: datetime | None  # absolute, UTC; Slack renders it in each reader's zone
    deadline_text: str  # the deadline in the team's timezone, e.g. "15:15"


@dataclass(frozen=True)
class Button:
    """A button of the card."""

    action: CaseAction
    label: str
    style: str | None = None  # "primary", "danger" or None


@dataclass(frozen=True)
class TopicChoice:
    """A topic an agent can add to a case or take away from it, on the card."""

    action: CaseAction  # TOPIC with the topic's number
    title: str
    chosen: bool


@dataclass(frozen=True)
class CardView:
    """Everything a card shows; messenger adapters only lay it out and escape it."""

    case_id: int
    title: str  # "#12 · Instagram · Kcell"
    brand: str
    platform: str
    source: str
    author_name: str | None
    author_handle: str | None
    author_url: str | None
    text: str  # the customer's words, raw: adapters escape and cut them
    url: str | None
    published_text: str  # "published 15:00, collected after 2 min"
    priority: Priority
    priority_text: str
    sla: SlaLine
    state: State
    state_text: str  # "Claimed by Aigerim"
    history: tuple[str, ...]
    buttons: tuple[Button, ...]
    original_label: str  # "Open the original"
    cut_label: str  # "… the rest is in the original"
    escalation_text: str | None = None  # "🔺 Escalated to Nurlan (critical) · acknowledged"
    incident_text: str | None = None  # "🚨 Part of incident #3"
    handoff_text: str | None = None  # "🔧 With the second line: Billing (since 15:20)"
    # "🌐 Kazakh · 🏷 Mobile internet · 📍 Almaty": what the mention was read as.
    about_text: str = ""
    language: str | None = None
    topics: tuple[str, ...] = ()
    # The topics to choose from (Slack shows a select, Telegram a button that opens them).
    topic_choices: tuple[TopicChoice, ...] = ()
    # The answer an announcement in force gives to cases like this one (raw text).
    official: OfficialAnswer | None = None
    official_label: str = ""  # "📣 Official answer (#3):"


def render_card(
    case: Case,
    first: Mention | None,
    events: Sequence[Event],
    *,
    team: Team,
    catalog: Catalog,
    now: datetime,
    can_publish: bool,
    escalation: Escalation | None = None,
    second_line: SecondLineTeam | None = None,
    official: OfficialAnswer | None = None,
    incident: int | None = None,
) -> CardView:
    """Build the card of a case as of `now` (with its newest escalation, if any).

    `second_line` is set for the card in a second-line team's channel: that team
    only sends the case back. `official` is the answer of an announcement in force
    that matches the case: shown, and offered as the reply while the case is open.
    """
    assert case.id is not None
    zone = team.zone
    policy = team.sla.for_tier(case.tier)
    # A customer's phone number is for the agent and the call centre alone: shared cards
    # mask it, also inside the customer's text.
    reveal = second_line is not None and second_line.kind == "callback"
    text = (first.text if first else "") if reveal else mask_phones(first.text if first else "")
    lag = case.collected_at - case.published_at
    published = catalog(
        "card.published", time=_clock(case.published_at, zone, now),
        lag=_duration(lag, catalog),
    )
    return CardView(
        case_id=case.id,
        title=catalog("card.title", id=case.id, platform=_platform(case.platform, catalog),
                      brand=case.brand),
        brand=case.brand,
        platform=case.platform,
        source=case.source,
        author_name=first.author.name if first else None,
        author_handle=first.author.handle if first else None,
        author_url=first.author.url if first else None,
        text=text,
        url=first.url if first else None,
        published_text=published,
        priority=case.priority,
        priority_text=catalog(f"priority.{case.priority.value}"),
        sla=sla_line(case, policy, now=now, zone=zone, catalog=catalog),
        state=case.state,
        state_text=_state_text(case, team, catalog),
        history=tuple(_history(events, team, catalog, zone, now)),
        buttons=tuple(
            _second_line_buttons(case, second_line, catalog, call=_call_task(events))
            if second_line is not None
            else _buttons(case, catalog, can_publish=can_publish,
                          can_hand_off=bool(team.second_line),
                          can_call_back=team.callback_team() is not None,
                          can_choose_topics=bool(team.topics), official=official)
        ),
        original_label=catalog("card.original"),
        cut_label=catalog("card.cut"),
        handoff_text=_handoff_text(case, team, catalog, events if reveal else ()),
        about_text=about_text(case, team, catalog),
        language=case.language,
        topics=case.topics,
        topic_choices=() if second_line is not None else topic_choices(case, team, catalog),
        escalation_text=None if escalation is None else catalog(
            "card.escalated", id=escalation.id,
            director=display_name(escalation.director, team, catalog),
            category=catalog(f"category.{escalation.category.value}"),
            state=catalog(f"escalation_state.{escalation.state.value}"),
        ),
        incident_text=None if incident is None else catalog("card.incident", id=incident),
        official=official if second_line is None else None,
        official_label="" if official is None else catalog(
            "card.official", id=official.announcement_id),
    )


def about_text(case: Case, team: Team, catalog: Catalog) -> str:
    """Return the line that says what a case was read as: language, topics, places."""
    parts = []
    if case.language:
        parts.append(catalog("card.language", language=catalog(f"language.{case.language}")))
    if team.topics:
        titles = [t.title for t in team.topics if t.name in case.topics]
        parts.append(catalog("card.topics", topics=", ".join(titles)) if titles
                     else catalog("card.no_topics"))
    places = [p.title for p in team.places if p.name in case.places]
    if places:
        parts.append(catalog("card.places", places=", ".join(places)))
    return " · ".join(parts)


def topic_choices(case: Case, team: Team, catalog: Catalog) -> tuple[TopicChoice, ...]:
    """Return the topics an agent may set on the case, each marked if the case has it."""
    assert case.id is not None
    return tuple(
        TopicChoice(CaseAction(ActionKind.TOPIC, case.id, number),
                    catalog("topic.chosen", title=topic.title) if topic.name in case.topics
                    else topic.title, topic.name in case.topics)
        for number, topic in enumerate(team.topics, start=1)
    )


def warning_from(case: Case, policy: SlaPolicy) -> datetime | None:
    """Return when the case's SLA line turns to warning (as on its card): at the last
    warning point, or five minutes before the deadline if that comes first; None when
    no answer is awaited."""
    due, started = case.response_due_at, case.response_started_at
    if not case.awaits_response or due is None or started is None:
        return None
    last_warning = policy.warning_points[-1] if policy.warning_points else 1.0
    return min(started + (due - started) * last_warning, due - 5 * _MINUTE)


def next_step(case: Case, policy: SlaPolicy, now: datetime) -> datetime | None:
    """Return when the card's SLA line next changes, or None if it will not."""
    return _step(case, policy, now).next_at


@dataclass(frozen=True)
class _Step:
    """Where the SLA line stands: which text, how many minutes, and until when."""

    level: SlaLevel
    text: str  # a key under "sla."
    minutes: int
    next_at: datetime | None


def _step(case: Case, policy: SlaPolicy, now: datetime) -> _Step:
    due, started = case.response_due_at, case.response_started_at
    if not case.awaits_response or due is None or started is None:
        return _Step(SlaLevel.SETTLED, "settled", 0, None)
    left = due - now
    if left > timedelta(0):
        minutes = int(left / _MINUTE)
        shown = minutes - minutes % 5 if minutes >= 5 else minutes
        change = due - shown * _MINUTE
        last_warning = policy.warning_points[-1] if policy.warning_points else 1.0
        warn_from = started + (due - started) * last_warning
        warning = minutes < 5 or now >= warn_from
        if not warning:
            change = min(change, warn_from)
        text = "left_at_least" if minutes >= 5 else "left" if minutes >= 1 else "left_under_minute"
        level = SlaLevel.WARNING if warning else SlaLevel.CALM
        return _Step(level, text, shown, change + _JUST_AFTER)
    over = int((now - due) / _MINUTE)
    step = 1 if over < 5 else 5 if over < 60 else 15
    shown = over - over % step
    text = "overdue_now" if over == 0 else "overdue" if over < 5 else "overdue_at_least"
    return _Step(SlaLevel.OVERDUE, text, shown, due + (shown + step) * _MINUTE + _JUST_AFTER)


def sla_line(
    case: Case, policy: SlaPolicy, *, now: datetime, zone: ZoneInfo, catalog: Catalog
) -> SlaLine:
    """Return the SLA line as of `now`."""
    step = _step(case, policy, now)
    if step.level is SlaLevel.SETTLED:
        if case.first_response_at is None:
            return SlaLine(SlaLevel.SETTLED, catalog("sla.closed"), None, "")
        took = _duration(case.first_response_at - case.published_at, catalog)
        return SlaLine(SlaLevel.SETTLED, catalog("sla.answered_in", duration=took), None,
                       _clock(case.first_response_at, zone, now))
    assert case.response_due_at is not None
    label = catalog(
        f"sla.{step.text}", minutes=step.minutes,
        duration=_duration(step.minutes * _MINUTE, catalog),
    )
    icon = catalog(f"sla.icon.{step.level.value}")
    return SlaLine(step.level, f"{icon} {label}", case.response_due_at,
                   _clock(case.response_due_at, zone, now))


def _state_text(case: Case, team: Team, catalog: Catalog) -> str:
    if case.state is State.CLAIMED and case.claimed_by:
        return catalog("state.claimed_by", name=display_name(case.claimed_by, team, catalog))
    if case.state is State.ANSWERED and case.claimed_by:
        return catalog("state.answered_by", name=display_name(case.claimed_by, team, catalog))
    return catalog(f"state.{case.state.value}")


def _handoff_text(case: Case, team: Team, catalog: Catalog,
                  revealed: Sequence[Event] = ()) -> str | None:
    if case.handoff_team is None or case.handed_off_at is None:
        return None
    second = team.second_line_team(case.handoff_team)
    local = case.handed_off_at.astimezone(team.zone).strftime("%H:%M")
    shown = catalog("card.with_second_line",
                    team=second.title if second else case.handoff_team, since=local)
    # The call centre's own card: the number to call, and when.
    task = _call_task(revealed)
    if task is not None:
        shown += "\n" + catalog("card.call_back", phone=pretty_phone(str(task.data["phone"])),
                                when=task.data.get("when") or "—")
    return shown


def _call_task(events: Sequence[Event]) -> Event | None:
    """Return the hand-off that asked for a call back (it carries the number), if the
    case's last hand-off did."""
    last = next((e for e in reversed(events) if e.kind is EventKind.HANDED_OFF), None)
    return last if last is not None and last.data.get("phone") else None


def _second_line_buttons(
    case: Case, second_line: SecondLineTeam, catalog: Catalog, *, call: Event | None = None
) -> list[Button]:
    assert case.id is not None
    if case.handoff_team != second_line.name:
        return []
    if second_line.kind == "callback" and call is not None:
        return [Button(CaseAction(ActionKind.CALLED, case.id), catalog("button.called"),
                       "primary"),
                Button(CaseAction(ActionKind.UNREACHABLE, case.id),
                       catalog("button.unreachable"), None)]
    return [Button(CaseAction(ActionKind.HAND_BACK, case.id), catalog("button.handback"),
                   "primary")]


def _buttons(
    case: Case, catalog: Catalog, *, can_publish: bool, can_hand_off: bool,
    can_choose_topics: bool = False, can_call_back: bool = False,
    official: OfficialAnswer | None = None,
) -> list[Button]:
    assert case.id is not None
    kinds: list[tuple[ActionKind, str | None]] = []
    if case.state in (State.NEW, State.REOPENED):
        kinds.append((ActionKind.CLAIM, "primary"))
    if case.is_open:
        if can_publish:
            kinds.append((ActionKind.REPLY, None))
            if official is not None:
                kinds.append((ActionKind.OFFICIAL, None))
        kinds.append((ActionKind.ANSWERED, None))
    if case.state is State.CLAIMED:
        kinds.append((ActionKind.RELEASE, None))
    if case.state is State.ANSWERED:
        kinds.append((ActionKind.RESOLVE, "primary"))
    if can_hand_off and case.is_open and case.handoff_team is None:
        kinds.append((ActionKind.HAND_OFF, None))
    if can_call_back and can_publish and case.is_open and case.handoff_team is None:
        kinds.append((ActionKind.CALL_BACK, None))
    if can_choose_topics:
        kinds.append((ActionKind.TOPIC, None))
    if case.state is not State.DISMISSED:
        kinds.append((ActionKind.ESCALATE, None))
    if case.state in (State.NEW, State.CLAIMED, State.REOPENED):
        kinds.append((ActionKind.DISMISS, "danger"))
    return [
        Button(CaseAction(kind, case.id, official.announcement_id
                          if official is not None and kind is ActionKind.OFFICIAL else None),
               catalog(f"button.{kind.value}"), style)
        for kind, style in kinds
    ]


def _history(
    events: Sequence[Event], team: Team, catalog: Catalog, zone: ZoneInfo, now: datetime
) -> list[str]:
    lines = [
        catalog(
            f"history.{event.kind.value}",
            time=_clock(event.at, zone, now),
            who=display_name(event.actor, team, catalog),
            incident=event.data.get("incident", ""),
        )
        for event in events
        if event.kind in _HISTORY_KINDS
    ]
    return lines[-HISTORY_LINES:]


def display_name(actor: str, team: Team, catalog: Catalog) -> str:
    """Return how an event's actor is shown: a person's name, a handle, or "socialcare"."""
    if actor == SYSTEM:
        return catalog("actor.system")
    kind, _, rest = actor.partition(":")
    if kind in ("brand", "customer", "source") and rest:
        return rest
    if kind == "team" and rest:
        second = team.second_line_team(rest)
        return second.title if second else rest
    person = team.person(actor)
    return person.name if person else actor


def _platform(platform: str, catalog: Catalog) -> str:
    key = f"platform.{platform}"
    return catalog(key) if catalog.has(key) else platform


def _clock(at: datetime, zone: ZoneInfo, now: datetime) -> str:
    local = at.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return local.strftime("%H:%M")
    return local.strftime("%d.%m %H:%M")


def _duration(delta: timedelta, catalog: Catalog) -> str:
    minutes = max(0, int(delta / _MINUTE))
    if minutes < 60:
        return catalog("duration.minutes", minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return catalog("duration.hours", hours=hours, minutes=minutes)
    return catalog("duration.days", days=hours // 24, hours=hours % 24)
