"""Call backs: the customer gives a number in private, the agent sends it to the call
centre (a `[[second_line]]` team with `kind = "callback"`) by the usual hand-off, and the
call centre marks the call done or the customer unreachable from its card."""

from __future__ import annotations

from dataclasses import dataclass

from socialcare.bot import handoffs
from socialcare.bot.answers.phones import normalize_phone
from socialcare.bot.cases import Changed
from socialcare.bot.errors import DomainError
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import SecondLineTeam, Team

OUTCOMES = ("done", "unreachable")


@dataclass(frozen=True)
class CallBack:
    """Ask the call centre to call the customer at `phone`, at the time they prefer."""

    case_id: int
    actor: str
    phone: str
    when: str = ""


@dataclass(frozen=True)
class RecordCall:
    """The call centre's outcome of a call back: done or unreachable."""

    case_id: int
    actor: str
    outcome: str


def callback_team(team: Team) -> SecondLineTeam:
    """Return the call centre, or refuse when none is configured."""
    found = team.callback_team()
    if found is None:
        raise DomainError("No call-back team is configured.", key="error.no_callback_team")
    return found


async def call_back(cmd: CallBack, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Hand the case to the call centre with the customer's number and preferred time."""
    centre = callback_team(team)
    phone = normalize_phone(cmd.phone)
    if phone is None:
        raise DomainError("That is not a phone number.", key="error.bad_phone")
    return await handoffs.hand_off(
        handoffs.HandOff(cmd.case_id, cmd.actor, centre.name, phone=phone, when=cmd.when),
        uow=uow, clock=clock, team=team)


async def record_call(cmd: RecordCall, *, uow: UnitOfWork, clock: Clock,
                      team: Team) -> Changed:
    """Record the call's outcome on the case and give it back to its agent."""
    if cmd.outcome not in OUTCOMES:
        raise DomainError(f"Unknown outcome {cmd.outcome!r}.", key="error.unknown_button")
    centre = callback_team(team)
    async with uow:
        case = await uow.cases.get(cmd.case_id)
    if case.handoff_team != centre.name:
        raise DomainError(f"Case #{cmd.case_id} is not with the call centre.",
                          key="error.not_handed_off", case=cmd.case_id)
    return await handoffs.hand_back(
        handoffs.HandBack(cmd.case_id, cmd.actor, called=cmd.outcome),
        uow=uow, clock=clock, team=team)
