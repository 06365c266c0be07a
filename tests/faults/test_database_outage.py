"""The database goes away for 10 s and comes back: /healthz says so, /ingest refuses
with a reason meanwhile, and the app carries on by itself afterwards.

PostgreSQL is not stopped (other test runs use it): a proxy between the app and the
server drops every connection and refuses new ones for the outage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from socialcare.adapters.collectors.signature import sign
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from tests.conftest import (
    ROOT,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    FlowingClock,
    reset_database,
)
from tests.e2e.chat import SLACK_CHANNEL, eventually, free_port, mention, minutes_ago
from tests.fakes.slack import FakeSlack
from tests.faults.proxy import CuttableProxy

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is None,
    reason="needs a database server to take away (TEST_DATABASE_URL); the embedded "
           "SQLite file cannot go away",
)

SECRET = "ingest-secret-for-fault-tests"
OUTAGE_SECONDS = 10.0


@dataclass
class Running:
    """The app on its HTTP server, reaching the database through `proxy`."""

    app: App
    slack: FakeSlack
    proxy: CuttableProxy
    http: aiohttp.ClientSession

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get("/healthz") as response:
            return response.status, await response.json()

    async def ingest(self, *mentions: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(list(mentions)).encode()
        async with self.http.post("/ingest", data=body,
                                  headers={"X-Signature": sign(body, SECRET)}) as response:
            return response.status, await response.json()

    async def card_recorded(self, case_id: int) -> None:
        """Wait until the case's card is in Slack and the database knows where."""
        async def recorded() -> bool:
            async with self.app.deps.uow() as uow:
                return any(card.message_id for card in await uow.cards.for_case(case_id))

        deadline = asyncio.get_running_loop().time() + 10
        while not (self.card_of(case_id) and await recorded()):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the card of case #{case_id} not recorded within 10 s")
            await asyncio.sleep(0.05)

    async def post_begun(self, case_id: int) -> None:
        """Wait until the app has recorded its attempt to post the case's card."""
        async def begun() -> bool:
            async with self.app.deps.uow() as uow:
                return any(card.posting_since for card in await uow.cards.for_case(case_id))

        deadline = asyncio.get_running_loop().time() + 10
        while not await begun():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no post of case #{case_id}'s card begun within 10 s")
            await asyncio.sleep(0.02)

    def card_of(self, case_id: int) -> Any:
        return next((m for m in self.slack.messages(SLACK_CHANNEL, include_replies=False)
                     if (m.metadata or {}).get("event_payload") == {"case_id": case_id}), None)


def behind(proxy: CuttableProxy, url: str) -> str:
    """Return `url` with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port) \
        .render_as_string(hide_password=False)


@asynccontextmanager
async def running_behind_proxy(clock: FlowingClock) -> AsyncIterator[Running]:
    assert TEST_DATABASE_URL is not None
    await reset_database(TEST_DATABASE_URL)
    server = make_url(TEST_DATABASE_URL)
    async with CuttableProxy(server.host or "127.0.0.1", server.port or 5432) as proxy, \
            FakeSlack() as slack:
        slack.add_channel("care", channel_id=SLACK_CHANNEL)
        settings = Settings(
            database_url=behind(proxy, TEST_DATABASE_URL), redis_url=TEST_REDIS_URL,
            config_file=ROOT / "config.example.toml", ingest_webhook_secret=SECRET,
            slack_bot_token=slack.bot_token, slack_api_url=slack.url,
            slack_signing_secret=slack.signing_secret,
        )
        async with runtime(settings, clock=clock) as app:
            await app.deps.redis.flushdb()
            port = free_port()
            site = TestServer(build_app(app), port=port)
            await site.start_server()
            try:
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http, \
                        asyncio.timeout(60):
                    yield Running(app, slack, proxy, http)
            finally:
                await site.close()


async def test_the_app_is_unhealthy_while_the_database_is_away_and_carries_on_after(
    flowing_clock: FlowingClock,
) -> None:
    loop = asyncio.get_running_loop()
    async with running_behind_proxy(flowing_clock) as run:
        assert await run.health() == (200, {"status": "ok", "database": "ok", "redis": "ok"})
        status, before = await run.ingest(mention("before", published=minutes_ago(
            flowing_clock, 1)))
        assert status == 200
        # Cut when the app is idle: its card posted *and recorded* (a cut between the
        # two is the next test's case).
        await run.card_recorded(before["results"][0]["case_id"])

        await run.proxy.cut()
        cut_at = loop.time()
        during: list[tuple[int, dict[str, Any]]] = [await run.health()]
        refused = await run.ingest(mention("during", published=minutes_ago(flowing_clock, 1)))
        while loop.time() - cut_at < OUTAGE_SECONDS:
            during.append(await run.health())
            await asyncio.sleep(0.5)
        await run.proxy.restore()
        healthy = await _until_healthy(run, within=5)

        again = await run.ingest(mention("during", published=minutes_ago(flowing_clock, 1)))
        late = await run.ingest(mention("after", published=minutes_ago(flowing_clock, 8)))
        assert again[0] == 200 and late[0] == 200, (again, late)
        retried_case = again[1]["results"][0]["case_id"]
        late_case = late[1]["results"][0]["case_id"]
        # The dispatcher, backed off while the database was away, posts their cards...
        await eventually(lambda: run.card_of(retried_case) and run.card_of(late_case),
                         within=20)
        # ...and the scheduler fires the SLA point that fell due (8 min of 15: 50 %).
        late_card = run.card_of(late_case)
        notes = await eventually(lambda: [m.text for m in run.slack.thread(
            SLACK_CHANNEL, late_card.ts)], within=20)

    assert all(status == 503 for status, _ in during), during
    assert all(body["status"] == "unhealthy" and body["database"].startswith("down: ")
               and body["redis"] == "ok" for _, body in during), during
    assert refused[0] == 503 and "storage" in refused[1]["error"], refused
    assert healthy == {"status": "ok", "database": "ok", "redis": "ok"}
    # What was refused during the outage was not half-stored: sent again, it is new.
    assert again[1]["results"][0]["outcome"] == "created"
    assert late[1]["results"][0]["outcome"] == "created"
    assert notes[0].startswith(f"⚠ #{late_case}: 50% of the answer time is gone")


async def _until_healthy(run: Running, *, within: float) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, body = await run.health()
        if status == 200:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still unhealthy {within} s after the database came back: "
                                 f"{body}")
        await asyncio.sleep(0.2)


async def test_a_card_posted_as_the_database_went_away_does_not_hold_up_its_channel(
    flowing_clock: FlowingClock,
) -> None:
    # The card is in Slack but the database does not know it: the next attempt, once
    # the attempt is stale, finds it by its case id. Meanwhile the channel's other
    # cards must go out as usual.
    async with running_behind_proxy(flowing_clock) as run:
        run.slack.slow_next("chat.postMessage", delay=1.5)
        _, first = await run.ingest(mention("first", published=minutes_ago(flowing_clock, 2)))
        first_case = first["results"][0]["case_id"]
        # The post is on its way (its attempt recorded): the line goes before its outcome.
        await run.post_begun(first_case)
        await run.proxy.cut()
        await eventually(lambda: run.card_of(first_case), within=5)
        await asyncio.sleep(3)  # the app fails to record where it went, and backs off
        await run.proxy.restore()
        await _until_healthy(run, within=10)

        _, second = await run.ingest(mention("second", published=minutes_ago(flowing_clock, 1)))
        second_case = second["results"][0]["case_id"]
        await eventually(lambda: run.card_of(second_case), within=15)
