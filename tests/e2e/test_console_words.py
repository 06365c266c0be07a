"""The console's words in both languages: an event's details named, SLA points told in
words, urgent cases marked, and no card promised by a messenger that is not set up."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from socialcare.bot import handoffs
from socialcare.bot.pipeline import Outcome
from socialcare.console import access
from socialcare.handlers import scheduler
from socialcare.handlers.chat import service
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from tests.conftest import (
    ROOT,
    TEST_REDIS_URL,
    FakeClock,
    database_url,
    reset_database,
    write_config,
)
from tests.e2e.test_console import PASSWORD, browser
from tests.mentions import mention

# What each language must say, and the raw keys and English it must not.
SAYS = {
    "en": ["SLA warning: 50% of the answer time gone", "SLA breached: no answer by the deadline",
           "team: Billing", "note: double charge",
           "link: <a href=\"https://example.org/p/ig-2\"", "🔥 urgent"],
    "ru": ["предупреждение SLA: прошло 50% времени на ответ", "SLA нарушен: нет ответа к сроку",
           "команда: Billing",
           "заметка: double charge", "ссылка: <a href=\"https://example.org/p/ig-2\"",
           "🔥 срочно"],
}
NEVER = ["label:", "url:", "text:", "warning 50%", "breach +", "not posted yet",
         "ещё не отправлена"]


@pytest.fixture(params=["en", "ru"])
async def console_app(request: pytest.FixtureRequest, tmp_path: Path,
                      clock: FakeClock) -> AsyncIterator[App]:
    config = tmp_path / "team.toml"
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    write_config(config, example.replace('language = "en"', f'language = "{request.param}"', 1))
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL, config_file=config,
                        ingest_webhook_secret="secret")
    async with runtime(settings, clock=clock) as built:
        await built.deps.redis.flushdb()
        yield built


async def test_a_case_page_names_each_detail_in_the_team_s_language(
    console_app: App, clock: FakeClock
) -> None:
    deps = console_app.deps
    language = deps.team.language
    [created, calm] = await deps.pipeline.ingest(
        [mention("ig-1", "Kcell, я подам в суд: списали деньги дважды",
                 published_at=clock.now() - timedelta(minutes=1)),
         mention("ig-3", "Kcell, how do I top up?", published_at=clock.now())],
        uow=deps.uow())
    assert created.outcome is calm.outcome is Outcome.CREATED
    assert created.case_id is not None
    case_id = created.case_id
    await deps.pipeline.ingest([mention("ig-2", "Kcell, ответьте!", published_at=clock.now(),
                                        thread_id="ig-1")], uow=deps.uow())
    clock.advance(minutes=7)
    await scheduler.tick(deps)  # the 50 % warning of the 15 minutes
    clock.advance(minutes=9)
    await scheduler.tick(deps)  # the 80 % warning and the breach
    await handoffs.hand_off(handoffs.HandOff(case_id, "saule", "billing", "double charge"),
                            **service(deps))
    await access.set_password(deps, "saule", PASSWORD)

    async with TestClient(TestServer(build_app(console_app, with_timers=False))) as http, \
            browser(str(http.make_url("")).rstrip("/")) as lead:
        assert await lead.sign_in("saule") == 303
        status, page, _ = await lead.get(f"/cases/{case_id}")
        _, board, _ = await lead.get("/")

    assert status == 200
    events = page[page.index('class="events"'):]
    for words in SAYS[language][:-1]:
        assert words in events, (words, events)
    for words in NEVER:
        assert words not in page, words
    # Urgent: marked on the board, the other case not.
    assert board.count(SAYS[language][-1]) == 1
    assert re.search(rf'class="[^"]*\burgent\b[^"]*" id="case-{case_id}"', board)
    assert re.search(rf'class="(?![^"]*\burgent\b)[^"]*" id="case-{calm.case_id}"', board)


async def test_the_sign_in_page_names_both_ways_to_a_one_time_link(console_app: App) -> None:
    text = console_app.deps.catalog

    async with TestClient(TestServer(build_app(console_app, with_timers=False))) as http:
        response = await http.get("/signin")
        page = await response.text()

    assert response.status == 200
    assert text("console.signin.by_chat") in page
    assert text("console.signin.by_server", command="socialcare console link ID") in page
    assert "/console" in page and "socialcare console link ID" in page
    assert text("console.signin.by_password") in page
