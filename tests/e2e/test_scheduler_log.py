"""What the scheduler says in its log: an SLA warning gives the answer's deadline; on a
first start without Slack or Telegram the digest and the scheduled reports wait for a
messenger of their channels, and nothing claims they went out."""

from __future__ import annotations

import logging

import pytest

from socialcare.bot.digest import due_digest
from socialcare.deps import Deps
from socialcare.handlers import scheduler
from tests.conftest import FakeClock
from tests.mentions import mention


async def test_an_sla_warning_is_logged_with_the_answer_s_deadline(
    app_deps: Deps, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await app_deps.pipeline.ingest([mention("ig-1", published_at=clock.now())],
                                   uow=app_deps.uow())
    clock.advance(minutes=8)  # past the 50 % point of 15 minutes

    with caplog.at_level(logging.INFO):
        await scheduler.tick(app_deps)

    # Published 15:00 in Almaty: the warning fell due at 15:07, the answer is due 15:15.
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("SLA ")] == [
        "SLA warning 50%: case #1 (main tier), response due 2026-11-25 15:15 +05"]


async def test_the_digest_and_reports_wait_for_a_messenger_and_say_nothing_was_posted(
    app_deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    assert not app_deps.messengers
    week = due_digest(app_deps.team, app_deps.clock.now())
    assert week is not None  # the example's digest is due at this time

    with caplog.at_level(logging.INFO):
        digest = await scheduler.post_due_digest(app_deps)
        reports = await scheduler.post_due_reports(app_deps)

    assert digest is None and reports == []
    assert [r.getMessage() for r in caplog.records if "posted" in r.getMessage()] == []
    # Nothing was taken for this week: a process with a messenger still posts it.
    async with app_deps.uow() as uow:
        assert await uow.jobs.claim("digest", week.key, at=app_deps.clock.now())
