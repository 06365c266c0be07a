"""g. Single-mention signed `POST /ingest` at concurrency 50 on PostgreSQL: POSTs per
second and the 5xx answers, against a bare signed insert served the same way in the
same run, in both of the app's ways of taking them:

- a process of the collectors role alone (Redis set): each POST is stored in the
  inbox and answered 202 `queued`, the workers of other processes make the cases
  (target ≥ 1,000 POSTs/s);
- one process of all roles: each POST is ingested, stored as a case and answered with
  its case id (target ≥ 500 POSTs/s).

2,000 POSTs of one mention each, 50 in flight at any moment, sent by a client in a
process of its own (the same for both sides). Every answer must be a 2xx:
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
import os
import sys
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
from socialcare.roles import ALL_ROLES, Role
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases, inbox

POSTS = 2_000
CONCURRENCY = 50
WARM_UP = 50
# POSTs a second: a collectors process answering `queued`, an all-roles one with case ids.
TARGETS = {"collectors": 1_000.0, "all": 500.0}


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


async def hammer_apart(url: str, count: int, prefix: str) -> tuple[float, Counter[int]]:
    """`hammer` from a process of its own, so that the client's work is not the
    server's: POST `count` single-mention bodies; return the rate and the statuses."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.concurrent_ingest", url, str(count), prefix,
        stdout=asyncio.subprocess.PIPE, cwd=running.ROOT)
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the client process ended with {child.returncode}")
    answer = json.loads(out)
    return answer["rate"], Counter({int(k): v for k, v in answer["statuses"].items()})


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


async def _one_run(run: int, posts: int, mode: str) -> dict[str, Any]:
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    config = running.settings(url, redis, port=running.free_port())
    roles = frozenset({Role.COLLECTORS}) if mode == "collectors" else ALL_ROLES
    expected = 202 if mode == "collectors" else 200
    async with running.serving(config, with_timers=False, roles=roles) as app, \
            bare_insert(url) as bare:
        ours_url = f"{app.url}/ingest"
        await hammer_apart(ours_url, WARM_UP, f"warm{run}")
        await hammer_apart(bare, WARM_UP, f"warm{run}")
        ours, statuses = await hammer_apart(ours_url, posts, f"run{run}")
        baseline, bare_statuses = await hammer_apart(bare, posts, f"bare{run}")
        async with app.app.deps.engine.connect() as conn:
            table = inbox if mode == "collectors" else cases
            stored = (await conn.execute(select(func.count()).select_from(table))).scalar()
        async with app.app.deps.uow() as uow:
            counted = (await uow.sources.get(mentions.MAIN_SOURCE)).items_found
    if set(bare_statuses) != {200}:
        raise RuntimeError(f"the bare route answered {dict(bare_statuses)}")
    sent = posts + WARM_UP
    # Each mention once as a case (or an inbox row) and once in the health count; and
    # every answer the one its mode gives: what is off either way.
    astray = abs(sent - (stored or 0)) + abs(sent - counted) \
        + sum(n for status, n in statuses.items() if status != expected)
    return {"rate": ours, "bare": baseline, "statuses": statuses, "astray": astray,
            "load": os.getloadavg()[0]}


async def measure(*, posts: int = POSTS, runs: int, log: Any = print) -> list[Figure]:
    """Measure `runs` rounds of `posts` single-mention POSTs at concurrency 50, in
    turns: a collectors process, then an all-roles one."""
    figures: list[Figure] = []
    results: dict[str, list[dict[str, Any]]] = {"collectors": [], "all": []}
    for run in range(runs):
        for mode in results:
            result = await _one_run(run, posts, mode)
            results[mode].append(result)
            log(f"  g. run {run + 1}/{runs}, {mode}: {result['rate']:,.0f} POSTs/s "
                f"(bare {result['bare']:,.0f}/s), answers "
                f"{dict(sorted(result['statuses'].items()))}")
    for mode, title, answer in (("collectors", "collectors role", "202 queued"),
                                ("all", "all roles", "case ids")):
        done = results[mode]
        answered: Counter[int] = sum((r["statuses"] for r in done), Counter())
        scale = {"posts": posts, "concurrency": CONCURRENCY, "mentions_per_post": 1,
                 "answers": {str(k): v for k, v in sorted(answered.items())}}
        errors = [float(sum(n for s, n in r["statuses"].items() if s >= 500)) for r in done]
        figures += [
            at_least(f"g. POST /ingest ×1 at c50, PostgreSQL, {title} ({answer})",
                     [r["rate"] for r in done], "POSTs/s", TARGETS[mode], detail=scale,
                     note="load average " + ", ".join(f"{r['load']:.1f}" for r in done)),
            at_least(f"g. {title} ÷ bare signed insert at c50",
                     [r["rate"] / r["bare"] for r in done], "×",
                     note="a route that checks the signature, parses and inserts one plain "
                          "row, its own transaction per request"),
            at_most(f"g. 5xx answers, {title}", errors, "5xx", 0,
                    note="every answer must be 2xx: a 2xx means stored"),
            at_most(f"g. mentions astray, {title}", [float(r["astray"]) for r in done],
                    "mentions", 0,
                    note=f"each POST answered {answer}, stored once (as "
                         f"{'an inbox row' if mode == 'collectors' else 'a case'}) and "
                         "counted once in its source's items_found"),
        ]
    return figures


def main() -> None:
    """The client process of `hammer_apart`: URL COUNT PREFIX; prints the rate and the
    statuses as JSON."""
    url, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rate, statuses = asyncio.run(hammer(url, _bodies(count, prefix)))
    print(json.dumps({"rate": rate, "statuses": dict(statuses)}))


if __name__ == "__main__":
    main()
