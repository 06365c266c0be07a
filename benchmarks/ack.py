"""d. Claim click → ack: how long Slack waits for socialcare's answer to a button click,
against a bare slack-bolt app that only acks, in the same run.

Slack's fake builds each click as Slack sends it — a signed `block_actions` form POST
to `/slack/events` — and the time is taken from sending the request to reading the
answer. socialcare runs whole (PostgreSQL, Redis, its dispatcher posting the cards of
the open cases within the rate limits, the scheduler ticking); each click claims a
different new case, so the work after the ack (the claim's transaction, the card's
edit) is real too. The bare app is slack-bolt's AsyncApp with one listener that acks,
served through the same aiohttp adapter, in the same process and event loop; the
clicks alternate between the two apps, ten a second.

The clicks name cases whose cards may not be posted yet (a thousand cards take a
thousand seconds at Slack's pace), so each click carries the newest card as its
message: socialcare reads the case from the button's action id only.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from benchmarks import fake_chat, open_cases, running, stores
from benchmarks.table import Figure, at_most, percentile
from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.handlers.slack import http_route
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases
from tests.fakes.slack import FakeSlack

TARGET_MS = 100.0
CLICKS_PER_SECOND = 10.0
WARM_UP = 5


@asynccontextmanager
async def bare_bolt(slack: FakeSlack) -> AsyncIterator[str]:
    """Serve a slack-bolt app that acks every button and does nothing else; yield its
    /slack/events URL."""
    bolt = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.url),
                    signing_secret=slack.signing_secret)

    @bolt.action(re.compile(".*"))
    async def only_ack(ack: Any) -> None:
        await ack()

    web_app = web.Application()
    http_route(web_app, bolt, slack.signing_secret)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    port = running.free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        await runner.cleanup()


async def _click(session: aiohttp.ClientSession, slack: FakeSlack, url: str,
                 case_id: int) -> float:
    """Click Claim on a case's card; return the seconds until Slack had the ack."""
    request = slack.block_actions(
        action_id=CaseAction(ActionKind.CLAIM, case_id).pack(),
        channel=running.SLACK_CHANNEL, user=running.AGENT_SLACK, check=False,
    )
    body = request.body.encode()
    began = time.perf_counter()
    async with session.post(url, data=body, headers=request.headers) as response:
        await response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"{url} answered a click with {response.status}")
    return elapsed


async def _first_card(slack: FakeSlack, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not slack.messages(running.SLACK_CHANNEL):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no card reached Slack within {within:g} s")
        await asyncio.sleep(0.1)


async def _claimed(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(cases).where(cases.c.state == "claimed")
            return int((await conn.execute(query)).scalar() or 0)
    finally:
        await engine.dispose()


async def measure(*, clicks: int, runs: int, log: Any = print) -> list[Figure]:
    """Measure `runs` rounds of `clicks` claim clicks on socialcare and on bare Bolt."""
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    await open_cases.seed(url, WARM_UP + clicks * runs + 100)
    ours: list[list[float]] = []
    bare: list[list[float]] = []
    async with fake_chat.fakes(telegram=False) as fakes:
        slack = fakes.slack
        assert slack is not None
        config = running.settings(url, redis, port=running.free_port(),
                                  messengers=fakes.endpoints())
        async with running.serving(config) as app, bare_bolt(slack) as bare_url, \
                aiohttp.ClientSession() as session:
            ours_url = f"{app.url}/slack/events"
            await _first_card(slack)
            for case_id in range(1, WARM_UP + 1):  # Bolt's first request runs auth.test
                await _click(session, slack, ours_url, case_id)
                await _click(session, slack, bare_url, case_id)
            case_id = WARM_UP
            for run in range(runs):
                ours.append([])
                bare.append([])
                for n in range(clicks):
                    case_id += 1
                    next_at = time.monotonic() + 1 / CLICKS_PER_SECOND
                    pair = [(ours_url, ours[-1]), (bare_url, bare[-1])]
                    for target, into in pair if n % 2 == 0 else reversed(pair):
                        into.append(await _click(session, slack, target, case_id))
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                log(f"  d. run {run + 1}/{runs}: socialcare p50 "
                    f"{percentile(ours[-1], 50) * 1000:.1f} ms p99 "
                    f"{percentile(ours[-1], 99) * 1000:.1f} ms; bare bolt p50 "
                    f"{percentile(bare[-1], 50) * 1000:.1f} ms p99 "
                    f"{percentile(bare[-1], 99) * 1000:.1f} ms")
            await asyncio.sleep(1.0)  # the last claims' work after their acks
    claimed = await _claimed(url)
    expected = WARM_UP + clicks * runs
    p99 = [percentile(r, 99) * 1000 for r in ours]
    bare_p99 = [percentile(r, 99) * 1000 for r in bare]
    bare_p50 = [percentile(r, 50) * 1000 for r in bare]
    note = (f"{clicks} clicks per run, {CLICKS_PER_SECOND:g}/s, PostgreSQL + Redis; bare "
            f"slack-bolt app p50 {statistics.median(bare_p50):.1f} ms, p99 "
            f"{statistics.median(bare_p99):.1f} ms; {claimed} of {expected} "
            f"clicked cases claimed")
    return [
        at_most("d. claim click → ack p50", [percentile(r, 50) * 1000 for r in ours], "ms"),
        at_most("d. claim click → ack p99", p99, "ms", TARGET_MS, note=note,
                detail={"clicks": clicks, "claimed": claimed, "expected": expected}),
        at_most("d. ack p50 ÷ bare slack-bolt ack p50",
                [percentile(o, 50) / percentile(b, 50) for o, b in zip(ours, bare, strict=True)],
                "×"),
        at_most("d. ack p99 ÷ bare slack-bolt ack p99",
                [o / b for o, b in zip(p99, bare_p99, strict=True)], "×"),
    ]
