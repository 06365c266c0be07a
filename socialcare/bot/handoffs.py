"""Hand-offs: a case goes to a second-line team (billing, network, the call centre for
a callback) and comes back to the agent who sent it.

Cases from social networks have priority with the second line, and their SLA keeps
counting while the team works on them. A hand-off puts the case's card in the team's
channels (with a button to send it back) and/or POSTs it as signed JSON to the team's
ticket system; the team answers with the button, `/handback`, or a signed callback
to `POST /handoff/{team}`. The agent is told, and holds the case again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from socialcare.bot import lifecycle
from socialcare.bot.answers.phones import mask_phones
from socialcare.bot.cases import Changed, change, worker
from socialcare.bot.errors import DomainError, NotAllowed
from socialcare.bot.model import Card, Case, Event, WebhookDelivery
from socialcare.bot.notices import notices_for
from socialcare.bot.pipeline import clean
from socialcare.bot.ports import Clock, DeliveryFailed, UnitOfWork, WebhookSender
from socialcare.bot.team import Role, SecondLineTeam, Team

TEAM_ACTOR = "team:"  # the actor of a hand-back that came from a team's ticket system
RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
GIVE_UP_AFTER = 20  # attempts: about a day of retries


@dataclass(frozen=True)
class HandOff:
    """Send a case to a second-line team."""

    case_id: int
    actor: str
    team: str
    note: str = ""
    # A call back: the customer's number (+digits) and when they prefer to be called.
    phone: str | None = None
    when: str = ""


@dataclass(frozen=True)
class HandBack:
    """Return a case from the second line (`actor` a person, or "team:<name>")."""

    case_id: int
    actor: str
    note: str = ""
    # A call back's outcome: "done" or "unreachable".
    called: str | None = None


def second_line_team(team: Team, name: str) -> SecondLineTeam:
    """Return a second-line team, or refuse naming those there are."""
    found = team.second_line_team(name.strip().casefold())
    if found is None:
        found = next((t for t in team.second_line if t.title.casefold() == name.casefold()),
                     None)
    if found is None:
        names = ", ".join(t.name for t in team.second_line) or "—"
        raise DomainError(f"There is no second-line team {name!r}.", key="error.unknown_team",
                          name=name, teams=names)
    return found


async def hand_off(cmd: HandOff, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Send the case to the team: a card in its channels, its ticket system told."""
    person = worker(team, cmd.actor)
    second = second_line_team(team, cmd.team)
    note = clean(cmd.note)

    def apply(case: Case, at: datetime) -> list[Event]:
        details = {} if cmd.phone is None else {"phone": cmd.phone,
                                                "when": clean(cmd.when) or None}
        return [lifecycle.hand_off(case, by=person.id, at=at, team=second.name, note=note,
                                   policy=team.sla.for_tier(case.tier), **details)]

    async def tell_the_team(uow: UnitOfWork, case: Case, at: datetime) -> None:
        assert case.id is not None
        have = {(c.messenger, c.channel) for c in await uow.cards.for_case(case.id)}
        await uow.cards.add([
            Card(case_id=case.id, messenger=c.messenger, channel=c.id, due_at=at,
                 deadline=case.response_due_at)
            for c in second.channels if (c.messenger, c.id) not in have
        ])
        if second.webhook_url:
            first = (await uow.mentions.first_of([case.id])).get(case.id)
            await uow.webhooks.add([WebhookDelivery(
                url=second.webhook_url,
                body=_ticket(case, second, person.name, note, first) | ({} if cmd.phone is None
                                                                      else {"phone": cmd.phone,
                                                                            "when": cmd.when}),
                created_at=at, next_try_at=at,
            )])

    return await change(cmd.case_id, apply, uow=uow, clock=clock, after=tell_the_team)


def _ticket(case: Case, second: SecondLineTeam, by: str, note: str, first: Any) -> dict[str, Any]:
    """The JSON a ticket system gets for a hand-off."""
    return {
        "event": "handoff",
        "case_id": case.id,
        "team": second.name,
        # Social networks first: the second line is asked to treat these as priority.
        "priority": "social_media" if case.tier.value == "main" else "forum_news",
        "tier": case.tier.value,
        "platform": case.platform,
        "brand": case.brand,
        "published_at": case.published_at.isoformat(),
        "response_due_at": case.response_due_at.isoformat() if case.response_due_at else None,
        "handed_off_by": by,
        "note": note or None,
        "customer": None if first is None else {
            "name": first.author.name, "handle": first.author.handle, "url": first.author.url,
        },
        # A customer's phone number is for the call centre alone: other teams' ticket
        # systems get it masked, as their cards show it.
        "text": None if first is None else
        first.text if second.kind == "callback" else mask_phones(first.text),
        "url": None if first is None else first.url,
        "answer_with": f"POST /handoff/{second.name} {{\"case_id\": {case.id}, \"note\": …}}",
    }


async def hand_back(cmd: HandBack, *, uow: UnitOfWork, clock: Clock, team: Team) -> Changed:
    """Return the case to its agent, who is told and holds it again."""
    from_team = cmd.actor.removeprefix(TEAM_ACTOR) if cmd.actor.startswith(TEAM_ACTOR) else None
    person = None if from_team else team.person(cmd.actor)
    if from_team is None and person is None:
        raise NotAllowed("Not in the roster.", key="error.not_in_roster")

    returned_from: dict[str, str] = {}

    def apply(case: Case, at: datetime) -> list[Event]:
        returned_from["team"] = case.handoff_team or ""
        if person is not None and person.role is Role.DIRECTOR:
            raise NotAllowed("Directors do not work cases.", key="error.not_a_worker")
        sender = from_team or (person.team if person and person.role is Role.SECOND_LINE
                               else None)
        if sender is not None and case.handoff_team not in (None, sender):
            raise NotAllowed("Another team has this case.", key="error.other_team",
                             case=case.id, team=case.handoff_team)
        if sender is None and person is not None and case.handoff_team is not None \
                and person.role is Role.AGENT and person.id != case.handed_off_by:
            # The team answers; of the care team, only who sent it (or a lead) takes it back.
            raise NotAllowed("Only the team, its sender or a lead sends it back.",
                             key="error.handback_not_allowed", case=case.id,
                             team=case.handoff_team, by=case.handed_off_by or "—")
        details = {} if cmd.called is None else {"called": cmd.called}
        return [lifecycle.hand_back(case, by=person.id if person else cmd.actor, at=at,
                                    note=clean(cmd.note), policy=team.sla.for_tier(case.tier),
                                    **details)]

    async def tell_the_agent(uow: UnitOfWork, case: Case, at: datetime) -> None:
        agent = team.person(case.claimed_by or "")
        if agent is None:
            return
        second = team.second_line_team(returned_from["team"])
        notices = notices_for(agent, "notice.handed_back", case=case.id,
                              team=second.title if second else returned_from["team"],
                              note=clean(cmd.note) or "—")
        for notice in notices:
            notice.created_at = at
        await uow.notices.add(notices)

    return await change(cmd.case_id, apply, uow=uow, clock=clock, after=tell_the_agent)


async def deliver_webhooks(
    *, uow: UnitOfWork, clock: Clock, sender: WebhookSender, limit: int = 20
) -> list[WebhookDelivery]:
    """POST the due webhook deliveries; retry failures with a growing wait."""
    now = clock.now()
    async with uow:
        due: Sequence[WebhookDelivery] = await uow.webhooks.due(now, limit=limit)
        mine = [d for d in due if await uow.webhooks.lease(d, until=now + RETRY_FIRST)]
        await uow.commit()
    done = []
    for delivery in mine:
        try:
            await sender.post(delivery.url, delivery.body)
        except DeliveryFailed as error:
            delivery.attempts += 1
            wait = min(RETRY_FIRST * 2 ** delivery.attempts, RETRY_MAX)
            delivery.last_error = str(error)[:500]
            delivery.next_try_at = None if delivery.attempts >= GIVE_UP_AFTER else now + wait
        else:
            delivery.attempts += 1
            delivery.sent_at, delivery.next_try_at = clock.now(), None
            done.append(delivery)
        async with uow:
            await uow.webhooks.save(delivery)
            await uow.commit()
    return done
