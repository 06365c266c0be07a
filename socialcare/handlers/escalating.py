"""Escalations from the chat, the same in every messenger: `/escalate`, `/escalations`,
and the buttons of a director's escalation card."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from socialcare.bot import escalations as esc
from socialcare.bot.actions import EscalationAction, EscalationActionKind
from socialcare.bot.cards import display_name
from socialcare.bot.digest import Week, build_digest, digest_markdown, digest_summary
from socialcare.bot.errors import DomainError
from socialcare.bot.escalations import Category, EscalationState
from socialcare.bot.team import Person, Role, Team
from socialcare.deps import Deps
from socialcare.handlers.chat import Attachment, ChatReply, describe_error, service

# Words people type for each category, in the languages the team writes.
CATEGORY_WORDS = {
    Category.CRITICAL: ("critical", "crit", "urgent", "критично", "критичная", "срочно"),
    Category.INSIGHT: ("insight", "food", "thought", "idea", "размышление", "идея", "мысль"),
    Category.POSITIVE: ("positive", "praise", "kudos", "позитив", "похвала", "отзыв"),
}
MAX_CASES = 20  # in one escalation: a director reads them all
_CASES = re.compile(r"#?[1-9][0-9]{0,17}(?:\s*,\s*#?[1-9][0-9]{0,17})*")
_SLACK_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
LIST_FILTERS = ("open", "week", "critical", "insight", "positive")


class BadCommand(ValueError):
    """The command's arguments are wrong; the message says which part and how."""


@dataclass(frozen=True)
class Parsed:
    """An /escalate command, parsed."""

    case_ids: tuple[int, ...]
    category: Category
    director: str
    problem: str
    options: tuple[str, ...]


def category_of(word: str) -> Category | None:
    """Return the category a word names, in any of the team's languages."""
    folded = word.casefold()
    return next((c for c, words in CATEGORY_WORDS.items() if folded in words), None)


def person_named(team: Team, word: str) -> Person | None:
    """Find a person by `@id`, `@Name` or a Slack mention."""
    if found := _SLACK_USER.fullmatch(word):
        return team.person_by_slack(found[1])
    name = word.removeprefix("@").casefold()
    return next((p for p in team.people
                 if p.id.casefold() == name or p.name.casefold() == name), None)


def parse_cases(text: str) -> tuple[int, ...]:
    """Parse "12", "#12" or "12, 15, 16" (at most MAX_CASES) into case ids."""
    if not _CASES.fullmatch(text.strip()) or text.count(",") >= MAX_CASES:
        raise BadCommand(text)
    return tuple(int(part.strip().removeprefix("#")) for part in text.split(","))


def parse_escalate(args: str, team: Team) -> Parsed:
    """Parse `CASE[,CASE…] CATEGORY @DIRECTOR Problem | option | option`."""
    head, _, rest = args.partition("|")
    words = head.split()
    if len(words) < 4:
        raise BadCommand("usage")
    try:
        case_ids = parse_cases(words[0])
    except BadCommand:
        raise BadCommand("cases") from None
    category = category_of(words[1])
    if category is None:
        raise BadCommand("category")
    chief = person_named(team, words[2])
    if chief is None or chief.role is not Role.DIRECTOR:
        raise BadCommand("director")
    problem = " ".join(words[3:]).strip()
    options = tuple(o.strip() for o in rest.split("|") if o.strip()) if rest else ()
    return Parsed(case_ids, category, chief.id, problem, options)


async def escalate(parsed: Parsed, person: Person, deps: Deps) -> ChatReply:
    """Open the escalation; say how it went."""
    try:
        escalation = await esc.escalate(
            esc.Escalate(case_ids=parsed.case_ids, actor=person.id, category=parsed.category,
                         problem=parsed.problem, options=parsed.options,
                         director=parsed.director),
            **service(deps),
        )
    except DomainError as error:
        return ChatReply(describe_error(error, deps) + "\n" + deps.catalog("usage.escalate"))
    deps.wake()
    return ChatReply(deps.catalog(
        "command.escalated", id=escalation.id,
        director=display_name(escalation.director, deps.team, deps.catalog),
        category=deps.catalog(f"category.{escalation.category.value}"),
    ))


async def run_escalate(args: str, person: Person, deps: Deps) -> ChatReply:
    """Run `/escalate …`."""
    text = deps.catalog
    try:
        parsed = parse_escalate(args, deps.team)
    except BadCommand as bad:
        reason = str(bad)
        problem = "" if reason == "usage" else text(f"escalate.bad_{reason}",
                                                    directors=_directors(deps.team)) + "\n"
        return ChatReply(problem + text("usage.escalate"))
    return await escalate(parsed, person, deps)


def _directors(team: Team) -> str:
    return ", ".join(f"@{p.id}" for p in team.people if p.role is Role.DIRECTOR)


async def run_escalations(args: str, deps: Deps) -> ChatReply:
    """Run `/escalations [open | week | critical | insight | positive]`."""
    text = deps.catalog
    word = args.strip().casefold()
    if word and word not in LIST_FILTERS:
        return ChatReply(text("usage.escalations"))
    now = deps.clock.now()
    query: dict[str, object] = {}
    if word == "open":
        query["states"] = [EscalationState.OPEN.value, EscalationState.ACKNOWLEDGED.value]
    elif word == "week":
        query["raised_since"] = now - timedelta(days=7)
    elif word:
        query["categories"] = [word]
    async with deps.uow() as uow:
        found = await uow.escalations.find(limit=30, **query)  # type: ignore[arg-type]
    if not found:
        return ChatReply(text("command.escalations_empty"))
    lines = [text("command.escalations_title", count=len(found))]
    for e in found:
        age = int((now - e.raised_at) / timedelta(hours=1))
        lines.append(text(
            "command.escalation_line", id=e.id, category=text(f"category.{e.category.value}"),
            state=text(f"escalation_state.{e.state.value}"),
            director=display_name(e.director, deps.team, text), hours=age,
            problem=" ".join(e.problem.split())[:80],
        ))
    return ChatReply("\n".join(lines))


def directors(team: Team) -> list[Person]:
    """Return the roster's directors, in roster order (their buttons are numbered so)."""
    return [p for p in team.people if p.role is Role.DIRECTOR]


async def run_escalation_action(
    action: EscalationAction, person: Person, deps: Deps
) -> ChatReply | None:
    """Carry out a one-click button of an escalation card (acknowledge, an option,
    a chosen director, close); None when the card's change says enough."""
    kinds = EscalationActionKind
    try:
        if action.kind is kinds.ACKNOWLEDGE:
            await esc.acknowledge(esc.Acknowledge(action.escalation_id, person.id), **service(deps))
        elif action.kind is kinds.DECIDE and action.arg:
            async with deps.uow() as uow:
                escalation = await uow.escalations.get(action.escalation_id)
            if not 0 < action.arg <= len(escalation.options):
                return ChatReply(deps.catalog("error.unknown_button"))
            choice = deps.catalog("escalation.option_decision", number=action.arg,
                                  option=escalation.options[action.arg - 1])
            await esc.decide(esc.Decide(action.escalation_id, person.id, choice), **service(deps))
        elif action.kind is kinds.REASSIGN and action.arg:
            chiefs = directors(deps.team)
            if not 0 < action.arg <= len(chiefs):
                return ChatReply(deps.catalog("error.unknown_button"))
            await esc.reassign(esc.Reassign(action.escalation_id, person.id,
                                            chiefs[action.arg - 1].id), **service(deps))
        elif action.kind is kinds.CLOSE:
            await esc.close(esc.Close(action.escalation_id, person.id), **service(deps))
        else:
            raise ValueError(f"{action} needs a form, not one click")
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    return None


async def write_to_escalation(
    kind: EscalationActionKind, escalation_id: int, text: str, person: Person, deps: Deps
) -> ChatReply:
    """Record a written decision or a comment."""
    try:
        if kind is EscalationActionKind.WRITE_DECISION:
            await esc.decide(esc.Decide(escalation_id, person.id, text), **service(deps))
        else:
            await esc.comment(esc.Comment(escalation_id, person.id, text), **service(deps))
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    return ChatReply(deps.catalog("command.noted", id=escalation_id))


async def run_digest(args: str, deps: Deps) -> ChatReply:
    """Run `/digest [week | last | YYYY-MM-DD]`: the summary, with the agenda attached."""
    word = args.strip().casefold()
    now = deps.clock.now()
    this_week = Week.of(now, deps.team.zone)
    if word in ("", "week"):
        week = this_week
    elif word == "last":
        week = this_week.previous()
    else:
        try:
            day = date.fromisoformat(word)
        except ValueError:
            return ChatReply(deps.catalog("usage.digest"))
        week = Week.of(datetime.combine(day, time(12), deps.team.zone), deps.team.zone)
    made = await build_digest(week, uow=deps.uow(), now=now)
    return ChatReply(
        digest_summary(made, team=deps.team, catalog=deps.catalog),
        attachments=(Attachment(
            f"digest-{week.key}.md",
            digest_markdown(made, team=deps.team, catalog=deps.catalog).encode()),),
    )
