"""Where an announcement stands per audience — its copies, who pressed Got it, who of
the configured members has not — and the figures of a period's announcements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot.announcements.audiences import TEAM, Member
from socialcare.bot.announcements.model import Announcement, Copy, Outlet, Receipt
from socialcare.bot.team import Team


class PlaceState:
    """How far a copy got (plain strings: they key the catalog)."""

    DELIVERED = "delivered"
    PENDING = "pending"
    FAILING = "failing"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class Place:
    """One copy of an announcement, as its status shows it."""

    outlet: Outlet
    address: str
    state: str  # a PlaceState
    attempts: int
    error: str | None
    next_try_at: datetime | None


@dataclass(frozen=True)
class AudienceStanding:
    """An audience's copies and receipts."""

    name: str
    places: tuple[Place, ...]
    has_chats: bool  # only chat copies carry Got it
    acknowledged: tuple[str, ...]  # members who pressed it, in that order
    others: tuple[str, ...]  # others who pressed it in the audience's chats
    missing: tuple[Member, ...]  # members who have not pressed it
    members: int


def members_of(team: Team, audience: str) -> tuple[Member, ...]:
    """Return who should read an audience's announcements: the configured members, or
    for the team, the people who work cases."""
    if audience == TEAM:
        return tuple(Member(name=p.name, slack=p.slack, telegram=p.telegram)
                     for p in team.people if p.works_cases)
    found = team.audience(audience)
    return found.members if found is not None else ()


def _chats(team: Team, audience: str) -> set[tuple[str, str]]:
    if audience == TEAM:
        return {(c.messenger, c.id) for c in team.channels}
    found = team.audience(audience)
    return {(c.messenger, c.id) for c in found.channels} if found else set()


def _place(copy: Copy, revision: int) -> Place:
    if copy.gave_up_at is not None:
        state = PlaceState.GAVE_UP
    elif copy.attempts > 0:
        state = PlaceState.FAILING
    elif copy.revision_sent >= revision:
        state = PlaceState.DELIVERED
    else:
        state = PlaceState.PENDING
    return Place(copy.outlet, copy.address, state, copy.attempts, copy.last_error,
                 copy.next_try_at if state in (PlaceState.FAILING, PlaceState.PENDING) else None)


def standings(announcement: Announcement, copies: Sequence[Copy], receipts: Sequence[Receipt],
              *, team: Team) -> list[AudienceStanding]:
    """Return, per audience of the announcement, its copies, who acknowledged and who of
    its members has not."""
    result = []
    for name in announcement.audiences:
        chats = _chats(team, name)
        members = members_of(team, name)
        mine = [c for c in copies if c.audience == name]
        acknowledged: list[str] = []
        others: list[str] = []
        seen: set[tuple[str, str]] = set()
        done_members: set[int] = set()
        for receipt in receipts:
            who = (receipt.messenger, receipt.user_id)
            index = next((i for i, m in enumerate(members)
                          if m.known_as(receipt.messenger, receipt.user_id)), None)
            if who in seen or (index is None and (receipt.messenger, receipt.channel)
                               not in chats):
                continue
            seen.add(who)
            if index is not None:
                if index in done_members:
                    continue
                done_members.add(index)
                acknowledged.append(members[index].name)
            else:
                others.append(receipt.name)
        result.append(AudienceStanding(
            name=name,
            places=tuple(_place(c, announcement.revision) for c in mine),
            has_chats=any(c.outlet.is_chat for c in mine),
            acknowledged=tuple(acknowledged),
            others=tuple(others),
            missing=tuple(m for i, m in enumerate(members) if i not in done_members),
            members=len(members),
        ))
    return result


@dataclass(frozen=True)
class AnnouncementFigures:
    """One announcement of a period, as the report shows it."""

    announcement: Announcement
    audiences: tuple[str, ...]  # names
    members: int  # configured members of its chat audiences
    acknowledged: int  # of them, who pressed Got it
    answered: int  # cases answered with it

    @property
    def acknowledged_share(self) -> float | None:
        """Return the share of members who acknowledged, or None with no members."""
        return None if not self.members else self.acknowledged / self.members


def period_figures(announcements: Sequence[Announcement],
                   copies: Mapping[int, Sequence[Copy]],
                   receipts: Mapping[int, Sequence[Receipt]],
                   answered: Mapping[int, int], *, team: Team) -> list[AnnouncementFigures]:
    """Return the figures of a period's announcements: audiences, the share of members
    who acknowledged (each member counted once, in chat audiences), cases answered."""
    figures = []
    for announcement in announcements:
        assert announcement.id is not None
        stands = standings(announcement, copies.get(announcement.id, ()),
                           receipts.get(announcement.id, ()), team=team)
        members: dict[tuple[str | None, int | None], bool] = {}
        for stand in stands:
            if not stand.has_chats:
                continue
            missing = {(m.slack, m.telegram) for m in stand.missing}
            for member in members_of(team, stand.name):
                key = (member.slack, member.telegram)
                members[key] = members.get(key, False) or key not in missing
        figures.append(AnnouncementFigures(
            announcement=announcement, audiences=tuple(s.name for s in stands),
            members=len(members), acknowledged=sum(members.values()),
            answered=answered.get(announcement.id, 0),
        ))
    return figures
