"""Changing a case's topics: agents correct what the matcher read.

The change is one conditional update of the case with a `topics_changed` event, like
every other change: the cards in every messenger are edited, the reports count the
case under its new topics, and the history says who changed them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot.cases import Changed, change, worker
from socialcare.bot.errors import DomainError
from socialcare.bot.model import Case, Event, EventKind
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import Team


class UnknownTopic(DomainError):
    """A topic name that is not in the config."""

    def __init__(self, names: Iterable[str], known: Iterable[str]) -> None:
        # A name is shown back to whoever typed it: only as much as a person types.
        wrong, choices = ", ".join(n[:40] for n in names)[:200], ", ".join(known)
        super().__init__(f"No such topic: {wrong}. Topics: {choices}.",
                         key="error.unknown_topic", names=wrong, choices=choices)


@dataclass(frozen=True)
class SetTopics:
    """Give a case exactly these topics (none: no topic)."""

    case_id: int
    actor: str
    topics: tuple[str, ...]


@dataclass(frozen=True)
class ToggleTopic:
    """Add a topic to a case, or take it away if the case has it."""

    case_id: int
    actor: str
    topic: str


def _ordered(team: Team, names: Iterable[str]) -> tuple[str, ...]:
    wanted = set(names)
    unknown = sorted(wanted - {t.name for t in team.topics})
    if unknown:
        raise UnknownTopic(unknown, [t.name for t in team.topics])
    return tuple(t.name for t in team.topics if t.name in wanted)


def _apply(case: Case, topics: tuple[str, ...], actor: str, at: datetime) -> list[Event]:
    if topics == case.topics:
        return []
    assert case.id is not None
    before, case.topics = case.topics, topics
    return [Event(case_id=case.id, kind=EventKind.TOPICS_CHANGED, actor=actor, at=at,
                  data={"topics": list(topics), "before": list(before)})]


async def set_topics(cmd: SetTopics, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Set the case's topics; anyone who works cases may."""
    person = worker(team, cmd.actor)
    topics = _ordered(team, cmd.topics)
    return await change(cmd.case_id, lambda case, at: _apply(case, topics, person.id, at),
                        uow=uow, clock=clock)


async def toggle_topic(cmd: ToggleTopic, *, uow: UnitOfWork, clock: Clock,
                       team: Team) -> Changed:
    """Add the topic to the case or take it away; anyone who works cases may."""
    person = worker(team, cmd.actor)
    _ordered(team, [cmd.topic])

    def apply(case: Case, at: datetime) -> list[Event]:
        names = set(case.topics) ^ {cmd.topic}
        return _apply(case, _ordered(team, names & {t.name for t in team.topics}),
                      person.id, at)

    return await change(cmd.case_id, apply, uow=uow, clock=clock)
