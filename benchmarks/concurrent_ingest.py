"""g. Single-mention signed `POST /ingest` at concurrency 50 on PostgreSQL: POSTs per
second and the 5xx answers, against a bare signed insert served the same way in the
same run.

2,000 POSTs of one mention each, 50 in flight at any moment, to the running app (all
roles, so each POST is stored before it is answered). Every answer must be a 2xx:
answering 503 for mentions it had stored, when the source-health update after the
commit lost a race, was issue 13's first defect; the run exits non-zero on any 5xx,
and on any mention not stored once as a case or not counted once in its source's
health. The baseline is a bare aiohttp route that checks the same signature,
parses the body and inserts one plain row per request (its own transaction) into the
same database, hammered the same way.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, insert, select

from benchmarks import mentions, running, stores
from benchmarks.table import Figure, at_least, at_most
from socialcare.adapters.collectors.signature import HEADER, verify
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases

POSTS = 2_000
CONCURRENCY = 50
WARM_UP = 50


def _bodies(count: int, prefix: str) -> list[tuple[bytes, dict[str, str]]]:
    published = datetime.now(UTC) - timedelta(minutes=1)
    return [running.signed([mentions.mention(n, published=published, prefix=prefix)])
            for n in range(count)]


async def hammer(url: str, requests: Sequence[tuple[bytes, dict[str, str]]], *,
                 concurrency: int = CONCURRENCY) -> tuple[float, Counter[int]]:
    """POST the requests with `concurrency` in flight at once; return the rate (/s) and
    the count of each status."""
    statuses: Counter[int] = Counter()
    waiting = iter(requests)  # shared by the senders: each takes the next one
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            for body, headers in waiting:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1

        began = perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = perf_counter() - began
    return len(requests) / elapsed, statuses


@asynccontextmanager
async def bare_insert(url: str) -> AsyncIterator[str]:
    """Serve a route that checks the signature, parses the body and inserts one plain
    row per request; yield its URL."""
    table = Table("bench_bare_posts", MetaData(), Column("id", Integer, primary_key=True),
                  Column("external_id", String(256)), Column("text", Text))
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)

    async def take(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(body, running.INGEST_SECRET, request.headers.get(HEADER)):
            return web.json_response({"error": "bad signature"}, status=401)
        [item] = json.loads(body)
        async with engine.begin() as conn:
            await conn.execute(insert(table).values(external_id=item["external_id"],
                                                    text=item["text"]))
        return web.json_response({"results": [{"outcome": "stored"}]})

    web_app = web.Application()
    web_app.router.add_post("/ingest", take)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    port = running.free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}/ingest"
    finally:
        await runner.cleanup()
        await engine.dispose()


async def _one_run(run: int, posts: int) -> dict[str, Any]:
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    config = running.settings(url, redis, port=running.free_port())
    async with running.serving(config, with_timers=False) as app, bare_insert(url) as bare:
        ours_url = f"{app.url}/ingest"
        await hammer(ours_url, _bodies(WARM_UP, f"warm{run}"))
        await hammer(bare, _bodies(WARM_UP, f"warm{run}"))
        ours, statuses = await hammer(ours_url, _bodies(posts, f"run{run}"))
        baseline, bare_statuses = await hammer(bare, _bodies(posts, f"bare{run}"))
        async with app.app.deps.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(cases))).scalar()
        async with app.app.deps.uow() as uow:
            counted = (await uow.sources.get(mentions.MAIN_SOURCE)).items_found
    if set(bare_statuses) != {200}:
        raise RuntimeError(f"the bare route answered {dict(bare_statuses)}")
    sent = posts + WARM_UP
    # Each mention once as a case and once in the health count: what is off either way.
    astray = abs(sent - (stored or 0)) + abs(sent - counted)
    return {"rate": ours, "bare": baseline, "statuses": statuses, "astray": astray}


async def measure(*, posts: int = POSTS, runs: int, log: Any = print) -> list[Figure]:
    """Measure `runs` rounds of `posts` single-mention POSTs at concurrency 50."""
    rates: list[float] = []
    ratios: list[float] = []
    errors: list[float] = []
    astray: list[float] = []
    answered: Counter[int] = Counter()
    for run in range(runs):
        result = await _one_run(run, posts)
        statuses: Counter[int] = result["statuses"]
        answered += statuses
        rates.append(result["rate"])
        ratios.append(result["rate"] / result["bare"])
        errors.append(float(sum(n for status, n in statuses.items() if status >= 500)))
        astray.append(float(result["astray"]))
        log(f"  g. run {run + 1}/{runs}: {result['rate']:,.0f} POSTs/s "
            f"(bare {result['bare']:,.0f}/s), answers {dict(sorted(statuses.items()))}")
    scale = {"posts": posts, "concurrency": CONCURRENCY, "mentions_per_post": 1,
             "answers": {str(k): v for k, v in sorted(answered.items())}}
    return [
        at_least("g. POST /ingest ×1 mention at concurrency 50, PostgreSQL", rates,
                 "POSTs/s", detail=scale),
        at_least("g. ÷ bare signed insert at concurrency 50", ratios, "×",
                 note="a route that checks the signature, parses and inserts one plain row"),
        at_most("g. 5xx answers of those POSTs", errors, "5xx", 0,
                note="every answer must be 2xx: a 2xx means stored"),
        at_most("g. mentions not stored once or not counted once", astray, "mentions", 0,
                note="cases made and the source's items_found, each against the POSTs"),
    ]
