"""/queue and /mine answer about the whole backlog, however many cases are open."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient

from socialcare.bot import cases
from socialcare.deps import Deps
from socialcare.handlers.chat import service
from socialcare.handlers.commands import QUEUE_LINES, run_command
from tests.conftest import FakeClock
from tests.e2e.chat import mention
from tests.e2e.test_console import _ingest

OPEN = 620


async def test_mine_and_queue_find_and_count_cases_past_the_first_five_hundred(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    # Oldest first, so the latest case has the latest deadline: last in every listing.
    results = await _ingest(http, *(
        mention(f"ig-{n}", f"Kcell backlog {n}",
                published=clock.now() - timedelta(seconds=OPEN - n))
        for n in range(OPEN)))
    ids = [r["case_id"] for r in results]
    for case_id in ids[:5]:
        await cases.claim(cases.Claim(case_id, "daniyar"), **service(app_deps))
    await cases.claim(cases.Claim(ids[-1], "aigerim"), **service(app_deps))
    aigerim = app_deps.team.person("aigerim")
    assert aigerim is not None

    mine = (await run_command("mine", "", aigerim, app_deps)).text
    queue = (await run_command("queue", "", aigerim, app_deps)).text
    daniyars = (await run_command("mine", "", app_deps.team.person("daniyar"), app_deps)).text

    assert mine.splitlines()[0] == "Your cases (1):"
    assert f"#{ids[-1]} " in mine
    assert queue.splitlines()[0] == f"Open cases for you ({OPEN - 5}):"
    assert len(queue.splitlines()) == 1 + QUEUE_LINES + 1
    assert queue.splitlines()[-1] == f"… and {OPEN - 5 - QUEUE_LINES} more."
    assert f"#{ids[5]} " in queue and f"#{ids[0]} " not in queue
    assert daniyars.splitlines()[0] == "Your cases (5):"


async def test_urgent_cases_are_marked_and_first_among_equal_deadlines_in_mine(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    at = clock.now() - timedelta(minutes=2)  # the same deadline for both
    [calm, urgent] = [r["case_id"] for r in await _ingest(
        http, mention("ig-1", "Kcell, how do I top up?", published=at),
        mention("ig-2", "Kcell, я подам в суд: списали деньги дважды", published=at))]
    for case_id in (calm, urgent):
        await cases.claim(cases.Claim(case_id, "aigerim"), **service(app_deps))
    aigerim = app_deps.team.person("aigerim")
    assert aigerim is not None

    mine = (await run_command("mine", "", aigerim, app_deps)).text.splitlines()

    assert mine[1].startswith(f"🔥 urgent · #{urgent} ") and f"#{urgent} " not in mine[2]
    assert mine[2].startswith(f"#{calm} ") and "🔥" not in mine[2]
