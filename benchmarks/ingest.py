"""a. Ingest throughput: mentions per second into stored cases, SQLite and PostgreSQL,
against a bare SQLAlchemy Core insert of the same rows in the same run.

The pipeline is the real one (`Pipeline.ingest` over `SqlUnitOfWork`: dedupe, thread
attach, brand match, SLA clock, case + mention + event + cards + facts in one
transaction per batch), fed batches of 100 as `POST /ingest` takes them. The bare
insert puts the same mentions, one transaction per batch, into a plain table with the
mentions' columns and no index. A third figure goes through HTTP: signed
`POST /ingest` requests to the running app. The last ones are a single signed `POST
/ingest` of 1,000 mentions, each against a bare bulk insert of the same rows in one
transaction measured in its turn: to a process of the collectors role, which stores the
delivery in the inbox and answers 202 (target ≥ 0.25 ×), and to one of all roles,
which makes every case within the request and answers with their ids (shown, with no
target: its seven tables' statements alone take some 6 × the bare insert).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import aiohttp
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from benchmarks import mentions, running, stores
from benchmarks.table import Figure, at_least
from socialcare.adapters.clock import SystemClock
from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import Pipeline
from socialcare.roles import ALL_ROLES, Role
from socialcare.settings import load_team
from socialcare.storage.database import SqlUnitOfWork, create_engine
from socialcare.storage.schema import cases, inbox
from socialcare.storage.schema import mentions as mentions_table

BATCH = 100
TARGET_POSTGRES = 500.0
ONE_POST = 1_000
TARGET_ONE_POST = 0.25
ONE_POST_MODES = {"collectors": "collectors role (202 queued)", "all": "all roles (case ids)"}
ONE_POST_NOTES = {
    "collectors": "the delivery stored in the inbox, answered 202; target "
                  f"≥ {TARGET_ONE_POST} ×",
    "all": "no target: each mention becomes a case, its event, its cards, its facts and "
           "their topic and place rows within the request, seven tables' inserts whose "
           "statements alone take about 6 × the bare insert; a surge's deliveries go to a "
           "collectors process (README, Several processes)",
}


def _plain_table() -> Table:
    """Return a table with the mentions' columns and nothing else: no key but a serial
    id, no unique constraint, no index, no foreign key."""
    columns = [Column(c.name, c.type) for c in mentions_table.columns
               if c.name not in ("id", "case_id")]
    return Table("bench_plain_mentions", MetaData(), Column("id", Integer, primary_key=True),
                 *columns)


def _row(raw: RawMention, now: datetime) -> dict[str, Any]:
    return {
        "source": raw.source, "external_id": raw.external_id, "platform": raw.platform or "",
        "text": raw.text, "published_at": raw.published_at, "collected_at": now,
        "thread_key": raw.thread_id or raw.external_id, "parent_id": raw.parent_id,
        "url": raw.url, "author_id": raw.author.id, "author_name": raw.author.name,
        "author_handle": raw.author.handle, "author_url": raw.author.url, "from_brand": False,
    }


def _corpus(count: int) -> list[list[RawMention]]:
    published = datetime.now(UTC) - timedelta(minutes=2)
    items = [mentions.mention(n, published=published,
                              source=mentions.FORUM_SOURCE if n % 4 == 0
                              else mentions.MAIN_SOURCE) for n in range(count)]
    return [mentions.raw_mentions(batch) for batch in mentions.batches(items, BATCH)]


async def pipeline_rate(url: str, batches: Sequence[Sequence[RawMention]]) -> float:
    """Ingest the batches through the pipeline; return mentions per second."""
    engine = create_engine(url)
    pipeline = Pipeline(load_team(running.CONFIG), clock=SystemClock())
    try:
        began = perf_counter()
        for batch in batches:
            await pipeline.ingest(batch, uow=SqlUnitOfWork(engine))
        elapsed = perf_counter() - began
        async with engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(cases))).scalar()
    finally:
        await engine.dispose()
    sent = sum(len(batch) for batch in batches)
    if stored != sent:
        raise RuntimeError(f"pipeline stored {stored} cases of {sent} mentions")
    return sent / elapsed


async def bare_rate(url: str, batches: Sequence[Sequence[RawMention]]) -> float:
    """Insert the same mentions as plain rows, one transaction per batch; return rows/s."""
    table = _plain_table()
    engine = create_engine(url)
    now = datetime.now(UTC)
    rows = [[_row(raw, now) for raw in batch] for batch in batches]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
        began = perf_counter()
        for batch in rows:
            async with engine.begin() as conn:
                await conn.execute(insert(table), batch)
        elapsed = perf_counter() - began
    finally:
        await engine.dispose()
    return sum(len(batch) for batch in rows) / elapsed


async def http_rate(url: str, redis_url: str, batches: Sequence[Sequence[RawMention]],
                    count: int) -> float:
    """POST the mentions, signed, in batches to the running app's /ingest; return /s."""
    published = datetime.now(UTC) - timedelta(minutes=2)
    items = [mentions.mention(n, published=published, prefix="http",
                              source=mentions.FORUM_SOURCE if n % 4 == 0
                              else mentions.MAIN_SOURCE) for n in range(count)]
    config = running.settings(url, redis_url, port=running.free_port())
    async with running.serving(config, with_timers=False) as app, \
            aiohttp.ClientSession() as session:
        began = perf_counter()
        created = 0
        for batch in mentions.batches(items, BATCH):
            results = await running.post_ingest(session, app.url, batch)
            created += sum(1 for r in results if r["outcome"] in ("created", "queued"))
        elapsed = perf_counter() - began
    if created != count:
        raise RuntimeError(f"/ingest made {created} cases of {count} mentions")
    return count / elapsed


async def one_post(url: str, redis_url: str, run: int, mode: str) -> float:
    """POST 1,000 mentions at once to a running app and return its rate (mentions/s).

    `mode` "collectors": a process of the collectors role alone, which stores the
    delivery in the inbox and answers 202 `queued` (the workers of other processes make
    the cases); "all": one process of all roles, which makes the cases within the request
    and answers with their ids."""
    published = datetime.now(UTC) - timedelta(minutes=2)
    items = [mentions.mention(n, published=published, prefix=f"{mode}{run}")
             for n in range(ONE_POST)]
    roles = frozenset({Role.COLLECTORS}) if mode == "collectors" else ALL_ROLES
    config = running.settings(url, redis_url, port=running.free_port())
    async with running.serving(config, with_timers=False, roles=roles) as app, \
            aiohttp.ClientSession() as session:
        warm = [mentions.mention(n, published=published, prefix=f"warm{mode}{run}")
                for n in range(20)]
        await running.post_ingest(session, app.url, warm)
        body, headers = running.signed(items)
        began = perf_counter()
        async with session.post(f"{app.url}/ingest", data=body, headers=headers) as response:
            answer = await response.json()
        elapsed = perf_counter() - began
        async with app.app.deps.engine.connect() as conn:
            table = inbox if mode == "collectors" else cases
            stored = (await conn.execute(select(func.count()).select_from(table))).scalar()
    outcome, status = ("queued", 202) if mode == "collectors" else ("created", 200)
    answered = sum(1 for r in answer["results"] if r["outcome"] == outcome)
    if response.status != status or answered != ONE_POST or stored != ONE_POST + len(warm):
        raise RuntimeError(f"/ingest ({mode}) answered {response.status}, {answered} of "
                           f"{ONE_POST} {outcome}, and stored {stored} rows")
    return ONE_POST / elapsed


async def bulk_insert(url: str, run: int) -> float:
    """Insert the rows of a 1,000-mention delivery plainly, in one transaction (the
    statement compiled and a connection open first); return rows/s."""
    published = datetime.now(UTC) - timedelta(minutes=2)
    items = [mentions.mention(n, published=published, prefix=f"bare{run}")
             for n in range(ONE_POST)]
    table = _plain_table()
    now = datetime.now(UTC)
    rows = [_row(raw, now) for raw in mentions.raw_mentions(items)]
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows[:20])
        began = perf_counter()
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows)
        bare = perf_counter() - began
    finally:
        await engine.dispose()
    return ONE_POST / bare


async def measure(*, count: int, runs: int, log: Any = print) -> list[Figure]:
    """Measure every ingest figure `runs` times over `count` mentions."""
    pg, redis = stores.postgres_url(), stores.redis_url()
    rates: dict[str, list[float]] = {k: [] for k in
                                     ("sqlite", "sqlite_bare", "pg", "pg_bare", "http",
                                      "one_collectors", "one_collectors_bare", "one_all",
                                      "one_all_bare")}
    with tempfile.TemporaryDirectory(prefix="socialcare-bench-") as directory:
        for run in range(runs):
            batches = _corpus(count)
            sqlite = stores.sqlite_url(Path(directory))
            await stores.reset_database(sqlite)
            rates["sqlite"].append(await pipeline_rate(sqlite, batches))
            rates["sqlite_bare"].append(await bare_rate(sqlite, batches))
            await stores.reset_database(pg)
            rates["pg"].append(await pipeline_rate(pg, batches))
            rates["pg_bare"].append(await bare_rate(pg, batches))
            await stores.reset_database(pg)
            await stores.flush_redis(redis)
            rates["http"].append(await http_rate(pg, redis, batches, count))
            for mode in ONE_POST_MODES:  # each beside a bare insert of its own turn
                await stores.reset_database(pg)
                await stores.flush_redis(redis)
                rates[f"one_{mode}"].append(await one_post(pg, redis, run, mode))
                rates[f"one_{mode}_bare"].append(await bulk_insert(pg, run))
            log(f"  a. run {run + 1}/{runs}: " + ", ".join(
                f"{name} {values[-1]:,.0f}/s" for name, values in rates.items()))
    ratio = {db: [p / b for p, b in zip(rates[db], rates[f"{db}_bare"], strict=True)]
             for db in ("sqlite", "pg")}
    scale = {"mentions": count, "batch": BATCH}
    return [
        at_least("a. ingest, SQLite", rates["sqlite"], "mentions/s", detail=scale),
        at_least("a. ingest ÷ bare insert, SQLite", ratio["sqlite"], "×",
                 note=f"bare Core insert of the same rows: "
                      f"{statistics.median(rates['sqlite_bare']):,.0f} rows/s"),
        at_least("a. ingest, PostgreSQL", rates["pg"], "mentions/s", TARGET_POSTGRES,
                 detail=scale),
        at_least("a. ingest ÷ bare insert, PostgreSQL", ratio["pg"], "×",
                 note=f"bare Core insert of the same rows: "
                      f"{statistics.median(rates['pg_bare']):,.0f} rows/s"),
        at_least("a. ingest via POST /ingest, PostgreSQL", rates["http"], "mentions/s",
                 detail=scale),
        *(at_least(f"a. one POST /ingest of 1,000 ÷ bare bulk insert, PostgreSQL, {title}",
                   [o / b for o, b in zip(rates[f"one_{mode}"], rates[f"one_{mode}_bare"],
                                          strict=True)],
                   "×", TARGET_ONE_POST if mode == "collectors" else None,
                   note=f"the POST {statistics.median(rates[f'one_{mode}']):,.0f} "
                        f"mentions/s, the bare insert of the same rows in one transaction "
                        f"{statistics.median(rates[f'one_{mode}_bare']):,.0f} rows/s; "
                        f"{ONE_POST_NOTES[mode]}; load average {os.getloadavg()[0]:.1f}")
          for mode, title in ONE_POST_MODES.items()),
    ]

