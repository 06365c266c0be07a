"""Urgent cases are marked wherever cases are listed — /queue, /mine, the wallboard —
and come first among cases due at the same moment."""

from __future__ import annotations

from socialcare.bot.pipeline import Outcome
from socialcare.console.wallboard import board
from socialcare.deps import Deps
from socialcare.handlers.commands import run_command
from tests.conftest import FakeClock
from tests.mentions import mention


async def test_urgent_cases_are_marked_and_first_among_equal_deadlines(
    app_deps: Deps, clock: FakeClock
) -> None:
    deps = app_deps
    # Published at one moment: one deadline for all three.
    results = await deps.pipeline.ingest([
        mention("ig-1", "Kcell, where is my refund?", published_at=clock.now()),
        mention("ig-2", "Kcell, I will take you to court: lawsuit", published_at=clock.now()),
        mention("ig-3", "Kcell roaming?", published_at=clock.now()),
    ], uow=deps.uow())
    assert [r.outcome for r in results] == [Outcome.CREATED] * 3
    urgent = results[1].case_id
    aigerim = deps.team.person("aigerim")
    assert aigerim is not None

    queue = (await run_command("queue", "", aigerim, deps)).text.splitlines()
    shown = await board(deps)

    assert queue[1].startswith(f"🔥 urgent · #{urgent} · ")
    assert [line.split(" · ")[0] for line in queue[2:4]] == ["#1", "#3"]
    assert [row.case_id for row in shown.rows] == [urgent, 1, 3]
    assert [row.urgent for row in shown.rows] == ["🔥 urgent", None, None]
