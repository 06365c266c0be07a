"""Chat commands and button clicks, the same in every messenger.

Slack and Telegram handlers parse their transport into a person, a command name and
its argument text (or a `CaseAction`), call `run_command` / `run_action`, and show
the `ChatReply` their own way. Texts come from the team's catalog; customer text in
a reply is raw and escaped by the transport.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable

from socialcare.bot import cases, handoffs, sources
from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.bot.answers import callbacks
from socialcare.bot.answers.forms import AnswerForm, form_of
from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.cards import render_card
from socialcare.bot.errors import DomainError, TeamFiguresOnly
from socialcare.bot.model import Case, Mention, Priority
from socialcare.bot.team import Person
from socialcare.bot.text import without_controls
from socialcare.bot.understanding import topics as understanding_topics
from socialcare.console import access
from socialcare.deps import Deps
from socialcare.handlers import announcing, calculating, escalating, incidenting, reporting
from socialcare.handlers.chat import ChatReply, describe_error, service

log = logging.getLogger(__name__)

COMMANDS = ("queue", "mine", "case", "claim", "resolve", "announce", "announcements",
            "announcement", "escalate", "escalations", "digest", "handoff", "handback", "topic",
            "report", "agent", "sla", "sources", "console", "incident", "incidents", "calc",
            "callback", "help")
QUEUE_LINES = 20
EXCERPT = 70
_CASE_ID = re.compile(r"#?([1-9][0-9]{0,17})")
# Commands that read the team's figures: the same rule as the console's /reports.
TEAM_FIGURES = frozenset({"report", "digest", "escalations"})


# Buttons that act at once, and the domain command each one sends.
_ONE_CLICK = {
    ActionKind.CLAIM: (cases.claim, cases.Claim),
    ActionKind.RELEASE: (cases.release, cases.Release),
    ActionKind.ANSWERED: (cases.mark_answered, cases.MarkAnswered),
    ActionKind.RESOLVE: (cases.resolve, cases.Resolve),
    ActionKind.DISMISS: (cases.dismiss, cases.Dismiss),
}


async def run_action(action: CaseAction, person: Person, deps: Deps) -> ChatReply | None:
    """Carry out a one-click card button (the others open a form in each messenger).

    Returns a private note for the person, or None when the card's change says enough.
    """
    if action.kind in (ActionKind.CALLED, ActionKind.UNREACHABLE):
        outcome = "done" if action.kind is ActionKind.CALLED else "unreachable"
        try:
            await callbacks.record_call(
                callbacks.RecordCall(action.case_id, person.id, outcome), **service(deps))
        except DomainError as error:
            return ChatReply(describe_error(error, deps))
        deps.wake()
        return ChatReply(deps.catalog("reply.called", id=action.case_id,
                                      outcome=deps.catalog(f"button.{action.kind.value}")))
    if action.kind is ActionKind.HAND_BACK:
        return await _handing(handoffs.hand_back(
            handoffs.HandBack(action.case_id, person.id), **service(deps)), deps)
    if action.kind is ActionKind.HAND_OFF and action.arg:
        teams = deps.team.second_line
        if not 0 < action.arg <= len(teams):
            return ChatReply(deps.catalog("error.unknown_button"))
        return await _handing(handoffs.hand_off(handoffs.HandOff(
            action.case_id, person.id, teams[action.arg - 1].name), **service(deps)), deps)
    if action.kind is ActionKind.TOPIC and action.arg:
        topics = deps.team.topics
        if not 0 < action.arg <= len(topics):
            return ChatReply(deps.catalog("error.unknown_button"))
        try:
            await understanding_topics.toggle_topic(understanding_topics.ToggleTopic(
                action.case_id, person.id, topics[action.arg - 1].name), **service(deps))
        except DomainError as error:
            return ChatReply(describe_error(error, deps))
        deps.wake()
        return None
    if action.kind not in _ONE_CLICK:
        raise ValueError(f"{action.kind} is not a one-click action")
    run, command = _ONE_CLICK[action.kind]
    try:
        await run(command(action.case_id, person.id), **service(deps))
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    return None


async def _topic(args: str, person: Person, deps: Deps) -> ChatReply:
    """/topic CASE [NAME …]: show, set (names), add (+name) or take away (-name) topics."""
    text = deps.catalog
    choices = ", ".join(t.name for t in deps.team.topics)
    parts = args.replace(",", " ").split()
    found = _CASE_ID.fullmatch(parts[0]) if parts else None
    if found is None:
        return ChatReply(text("usage.topic", choices=choices))
    case_id, names = int(found[1]), parts[1:]
    if names:
        async with deps.uow() as uow:
            current = set((await uow.cases.get(case_id)).topics)
        if all(n[0] in "+-" for n in names):
            for name in names:
                current = current | {name[1:]} if name[0] == "+" else current - {name[1:]}
            wanted = tuple(current)
        elif any(n[0] in "+-" for n in names):
            return ChatReply(text("usage.topic", choices=choices))
        else:
            wanted = tuple(names)
        changed = await understanding_topics.set_topics(
            understanding_topics.SetTopics(case_id, person.id, wanted), **service(deps))
        deps.wake()
        case = changed.case
    else:
        async with deps.uow() as uow:
            case = await uow.cases.get(case_id)
    titles = [t.title for t in deps.team.topics if t.name in case.topics]
    return ChatReply(text("command.topics", id=case_id,
                          topics=", ".join(titles) or text("command.topics_none")))


async def call_back(case_id: int, phone: str, when: str, person: Person,
                    deps: Deps) -> ChatReply:
    """Send a call back to the call centre; say how it went."""
    try:
        await callbacks.call_back(callbacks.CallBack(case_id, person.id, phone, when),
                                  **service(deps))
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    return ChatReply(deps.catalog("reply.callback_sent", id=case_id))


async def _callback(args: str, person: Person, deps: Deps) -> ChatReply:
    head, _, when = args.partition("|")
    case_word, _, phone = head.strip().partition(" ")
    found = _CASE_ID.fullmatch(case_word)
    if found is None or not phone.strip() or len(when) > 200:
        return ChatReply(deps.catalog("usage.callback"))
    return await call_back(int(found[1]), phone.strip(), when.strip(), person, deps)


async def reply_to_case(case_id: int, text: str, person: Person, deps: Deps, *,
                        announcement_id: int | None = None,
                        form: str = AnswerForm.TEXT,
                        picture: Picture | None = None) -> ChatReply:
    """Publish an agent's reply (begun from an announcement's official answer, if
    `announcement_id`; in the answer `form` it was prepared in) and record it; say how
    it went."""
    try:
        changed = await cases.reply(cases.Reply(case_id, person.id, text, announcement_id,
                                                form_of(form), picture),
                                    publishers=deps.publishers, **service(deps))
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    if picture is not None and not any(e.data.get("picture") for e in changed.events):
        return ChatReply(deps.catalog("reply.sent_text_only", id=case_id,
                                      source=changed.case.source))
    return ChatReply(deps.catalog("reply.sent", id=case_id))


async def text_only_source(case_id: int, deps: Deps) -> str | None:
    """Return the case's source when it publishes text only (a picture would be left
    out), for the reply form to say so before sending; None when it takes pictures."""
    try:
        found = await cases.find_pictures(case_id, uow=deps.uow(), team=deps.team,
                                          publishers=deps.publishers)
    except DomainError:
        return None
    return found.source if found.text_only else None


async def run_command(name: str, args: str, person: Person | None, deps: Deps) -> ChatReply:
    """Run a slash command for a person of the roster."""
    text = deps.catalog
    if person is None:
        return ChatReply(text("error.not_in_roster"))
    # NUL and other control characters are nobody's words (and PostgreSQL cannot keep NUL).
    args = without_controls(args).strip()
    try:
        if name in TEAM_FIGURES and not person.reads_team_figures:
            raise TeamFiguresOnly()
        if name == "help":
            return ChatReply(text("command.help"))
        if name == "queue":
            return await _queue(person, deps, mine_only=False)
        if name == "mine":
            return await _queue(person, deps, mine_only=True)
        if name in ("case", "claim", "resolve"):
            found = _CASE_ID.fullmatch(args)
            if found is None:
                return ChatReply(text(f"usage.{name}"))
            case_id = int(found[1])
            if name == "case":
                return await _case(case_id, deps)
            if name == "claim":
                await cases.claim(cases.Claim(case_id, person.id), **service(deps))
                deps.wake()
                return ChatReply(text("command.claimed", id=case_id))
            await cases.resolve(cases.Resolve(case_id, person.id), **service(deps))
            deps.wake()
            return ChatReply(text("command.resolved", id=case_id))
        if name == "announce":
            if not args:
                return ChatReply(text("usage.announce"))
            return await announcing.run_announce(args, person, deps)
        if name == "announcements":
            return await announcing.run_announcements(deps)
        if name == "announcement":
            return await announcing.run_announcement(args, person, deps)
        if name == "incidents":
            return await incidenting.run_incidents(deps)
        if name == "incident":
            return await incidenting.run_incident(args, person, deps)
        if name == "escalate":
            return await escalating.run_escalate(args, person, deps)
        if name == "escalations":
            return await escalating.run_escalations(args, deps)
        if name == "digest":
            return await escalating.run_digest(args, deps)
        if name in ("handoff", "handback"):
            return await _hand(name, args, person, deps)
        if name == "topic":
            return await _topic(args, person, deps)
        if name == "report":
            return await reporting.run_report(args, deps)
        if name == "agent":
            return await reporting.run_agent(args, person, deps)
        if name == "sla":
            return await reporting.run_sla(deps)
        if name == "sources":
            return await _sources(deps)
        if name == "console":
            return await _console(person, deps)
        if name == "calc":
            return await calculating.run_calc(args, deps)
        if name == "callback":
            return await _callback(args, person, deps)
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    return ChatReply(text("command.unknown", name=name))


async def _queue(person: Person, deps: Deps, *, mine_only: bool) -> ChatReply:
    async with deps.uow() as uow:
        # The queue shows what the person can answer: the cases in their languages.
        languages = [] if mine_only else [str(lang) for lang in person.languages]
        shown, count = await uow.cases.list_queue(person.id, unclaimed=not mine_only,
                                                  limit=QUEUE_LINES, languages=languages)
        firsts = await uow.mentions.first_of([c.id for c in shown if c.id])
        foreign = await uow.cases.count_waiting_elsewhere(languages) if languages else 0
    text = deps.catalog
    other = [text("command.other_languages", count=foreign)] if foreign else []
    if not shown:
        return ChatReply("\n".join([
            text("command.mine_empty" if mine_only else "command.queue_empty"), *other]))
    lines = [text("command.mine_title" if mine_only else "command.queue_title", count=count)]
    lines += [_queue_line(case, firsts.get(case.id or 0), deps) for case in shown]
    if count > len(shown):
        lines.append(text("command.more", count=count - len(shown)))
    lines += other
    return ChatReply("\n".join(lines))


def _queue_line(case: Case, first: Mention | None, deps: Deps) -> str:
    view = render_card(case, first, [], team=deps.team, catalog=deps.catalog,
                       now=deps.clock.now(), can_publish=False)
    excerpt = shared_excerpt(first.text if first else None, EXCERPT)
    language = f" · {deps.catalog(f'language.{case.language}')}" if case.language else ""
    urgent = f"{view.priority_text} · " if case.priority is Priority.URGENT else ""
    return f"{urgent}{view.title} · {view.sla.text} · {view.state_text}{language} · {excerpt}"


async def _case(case_id: int, deps: Deps) -> ChatReply:
    async with deps.uow() as uow:
        case = await uow.cases.get(case_id)
        firsts = await uow.mentions.first_of([case_id])
        events = await uow.events.for_case(case_id)
    view = render_card(case, firsts.get(case_id), events, team=deps.team,
                       catalog=deps.catalog, now=deps.clock.now(), can_publish=False)
    author = " ".join(filter(None, (view.author_name, view.author_handle))) or "—"
    lines = [view.title, f"{author}: {view.text[:500]}", view.published_text,
             f"{view.sla.text} · {view.state_text}", *view.history]
    if view.url:
        lines.insert(2, view.url)
    return ChatReply("\n".join(lines))


async def _console(person: Person, deps: Deps) -> ChatReply:
    """Send the person a one-time link that signs them in to the web console."""
    url = await access.issue_link(deps, person)
    if url is None:
        return ChatReply(deps.catalog("console.no_url"))
    minutes = int(access.LINK_LIFETIME.total_seconds() // 60)
    return ChatReply(deps.catalog("console.link", url=url, minutes=minutes), personal=True,
                     link=url)


async def _sources(deps: Deps) -> ChatReply:
    async with deps.uow() as uow:
        states = {state.name: state for state in await uow.sources.all()}
    unknown = await deps.queue.unknown_sources() if deps.queue is not None else {}
    return ChatReply(sources.table(deps.team.sources, states, now=deps.clock.now(),
                                   catalog=deps.catalog, polled=deps.collectors.polled,
                                   unknown=unknown))


async def _handing(command: Awaitable[object], deps: Deps) -> ChatReply | None:
    try:
        await command
    except DomainError as error:
        return ChatReply(describe_error(error, deps))
    deps.wake()
    return None


async def _hand(name: str, args: str, person: Person, deps: Deps) -> ChatReply:
    """Run `/handoff CASE TEAM [note]` or `/handback CASE [note]`."""
    words = args.split(maxsplit=2 if name == "handoff" else 1)
    needed = 2 if name == "handoff" else 1
    found = _CASE_ID.fullmatch(words[0]) if words else None
    if found is None or len(words) < needed:
        return ChatReply(deps.catalog(f"usage.{name}"))
    case_id = int(found[1])
    if name == "handoff":
        note = words[2] if len(words) > 2 else ""
        refused = await _handing(handoffs.hand_off(
            handoffs.HandOff(case_id, person.id, words[1], note), **service(deps)), deps)
        if refused is not None:
            return refused
        team = handoffs.second_line_team(deps.team, words[1])
        return ChatReply(deps.catalog("command.handed_off", id=case_id, team=team.title))
    note = words[1] if len(words) > 1 else ""
    refused = await _handing(handoffs.hand_back(
        handoffs.HandBack(case_id, person.id, note), **service(deps)), deps)
    return refused or ChatReply(deps.catalog("command.handed_back", id=case_id))

