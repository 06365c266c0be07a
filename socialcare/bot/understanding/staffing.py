"""Who can answer what: the languages of the people on shift against the languages of
the cases waiting, and telling the shift leads when a language has nobody."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from socialcare.bot.model import Case, State
from socialcare.bot.notices import notices_for
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import Team

JOB = "language-gap"
CASES_NAMED = 10
_WAITING = (State.NEW, State.REOPENED)


def uncovered(team: Team, cases: Iterable[Case], at: datetime) -> dict[str, list[int]]:
    """Return, per language, the waiting (unclaimed) cases that nobody on shift answers
    in. A team where nobody lists languages has no gaps: everyone answers everything."""
    if not any(p.languages for p in team.people):
        return {}
    on_shift = team.on_shift(at)
    gaps: dict[str, list[int]] = {}
    for case in cases:
        if case.state not in _WAITING or not case.language or case.id is None:
            continue
        if not any(p.speaks(case.language) for p in on_shift):
            gaps.setdefault(case.language, []).append(case.id)
    return gaps


async def tell_leads_of_gaps(*, uow: UnitOfWork, clock: Clock, team: Team) -> list[str]:
    """Tell the shift leads on duty of each language whose waiting cases nobody on shift
    answers — once an hour per language, whichever scheduler gets there first. Return
    the languages told of."""
    now = clock.now()
    hour = now.astimezone(team.zone).strftime("%Y-%m-%dT%H")
    told = []
    async with uow:
        gaps = uncovered(team, await uow.cases.list_open(limit=500), now)
        leads = team.leads_on_duty(now)
        for language, case_ids in sorted(gaps.items()):
            if not leads or not await uow.jobs.claim(JOB, f"{language}:{hour}", at=now):
                continue
            named = ", ".join(f"#{i}" for i in sorted(case_ids)[:CASES_NAMED])
            if len(case_ids) > CASES_NAMED:
                named += f" (+{len(case_ids) - CASES_NAMED})"
            notices = [notice for lead in leads
                       for notice in notices_for(lead, "notice.language_gap", language=language,
                                                 count=len(case_ids), cases=named)]
            for notice in notices:
                notice.created_at = now
            await uow.notices.add(notices)
            told.append(language)
        await uow.commit()
    return told
