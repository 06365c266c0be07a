"""m. The wallboard's data with 100,000 open cases, on SQLite and on PostgreSQL.

    python -m benchmarks.wallboard [--open 100000] [--runs 5]

Stores 10,000 open cases through the real pipeline, then copies their rows (case,
first mention, facts — what the board reads; the SQLite triggers count the copies as
they count any insert) until there are 100,000 — the pipeline alone took minutes per
back end on a loaded machine — and ANALYZEs the database; then builds the board —
per-tier counters, today's SLA share and the first 100 rows of the queue, what the
console pushes to every wall screen on each change — `runs` times, a case claimed
between builds so that no build is served from the last one's work. Target: ≤ 0.1 s
(median), on each back end. Exits non-zero on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, literal, select, text

from benchmarks import open_cases, running, stores
from benchmarks.table import Figure, at_most, render
from socialcare.bot import cases as commands
from socialcare.console.wallboard import board
from socialcare.main import runtime
from socialcare.storage.database import create_engine
from socialcare.storage.schema import case_facts, cases, mentions

TARGET_SECONDS = 0.1
PIPELINE_CASES = 10_000
AGENT = "aigerim"  # an agent of config.example.toml


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return "/".join(f"{load:.2f}" for load in os.getloadavg())


async def _multiply(url: str, times: int) -> None:
    """Copy the stored cases, their mentions and facts `times - 1` times, with new ids."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            top = int((await conn.execute(select(func.max(cases.c.id)))).scalar() or 0)
            top_mention = int((await conn.execute(select(func.max(mentions.c.id)))).scalar()
                              or 0)
            for copy in range(1, times):
                shift = top * copy
                for table, key in ((cases, "id"), (case_facts, "case_id"), (mentions, "id")):
                    columns = [c for c in table.columns]
                    values = []
                    for c in columns:
                        if c.name == key and table is mentions:
                            values.append(c + top_mention * copy)
                        elif c.name in ("id", "case_id"):
                            values.append(c + shift)
                        elif c.name == "external_id":
                            values.append(c + literal(f"-copy{copy}"))
                        else:
                            values.append(c)
                    source = select(*values).where(
                        (mentions.c.id if table is mentions else table.c[key]) <= (
                            top_mention if table is mentions else top))
                    await conn.execute(insert(table).from_select([c.name for c in columns],
                                                                 source))
            if conn.dialect.name == "postgresql":
                for table in ("cases", "mentions"):
                    await conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"))
    finally:
        await engine.dispose()


async def _analyze(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _time_board(url: str, redis: str | None, runs: int) -> tuple[list[float], list[float],
                                                                         int]:
    """Build the board `runs` times (a claim between builds); return the timings, this
    process's CPU time of each, and the open cases it counted."""
    config = running.settings(url, redis, port=running.free_port())
    timings: list[float] = []
    cpu: list[float] = []
    counted = 0
    async with runtime(config) as app:
        deps = app.deps
        await board(deps)  # warm: statements compiled, pages of the database cached
        for run in range(runs + 1):
            began, began_cpu = time.perf_counter(), time.process_time()
            shown = await board(deps)
            if run:  # the first is a warm-up after the claim path ran
                timings.append(time.perf_counter() - began)
                cpu.append(time.process_time() - began_cpu)
            counted = sum(t.open for t in shown.tiers)
            # A change between builds, as on a busy floor: the case at the top is claimed.
            first = next((r for r in shown.rows if r.state and r.holder == ""), None)
            if first is not None:
                await commands.claim(commands.Claim(first.case_id, AGENT), uow=deps.uow(),
                                  clock=deps.clock, team=deps.team)
    return timings, cpu, counted


async def _one(name: str, url: str, redis: str | None, *, open_count: int, runs: int,
               log: Any) -> Figure:
    began = time.perf_counter()
    await stores.reset_database(url)
    first = min(open_count, PIPELINE_CASES)
    await open_cases.seed(url, first)
    await _multiply(url, -(-open_count // first))
    await _analyze(url)
    log(f"  m. {name}: seeded {open_count:,} open cases in {time.perf_counter() - began:.0f} s")
    timings, cpu, counted = await _time_board(url, redis, runs)
    load = load_average()
    log(f"  m. {name}: median {statistics.median(timings):.3f} s "
        f"({min(timings):.3f}–{max(timings):.3f}), CPU {statistics.median(cpu):.3f} s, "
        f"load {load}")
    return at_most(f"m. wallboard data, {open_count:,} open, {name}", timings, "s",
                   TARGET_SECONDS,
                   note=f"{counted:,} open counted; per-tier counters, today's share and "
                        f"the queue's first rows; {min(timings):.3f}–{max(timings):.3f} s "
                        f"over {len(timings)} builds (this process's CPU "
                        f"{statistics.median(cpu) * 1000:.0f} ms a build); load average {load}",
                   detail={"open_cases": counted, "timings": timings, "cpu": cpu,
                           "load": load})


async def measure(*, open_count: int, runs: int, log: Any = print) -> list[Figure]:
    """Time the wallboard's data on SQLite and on PostgreSQL + Redis."""
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-wallboard-") as directory:
        figures.append(await _one("SQLite", stores.sqlite_url(Path(directory)), None,
                                  open_count=open_count, runs=runs, log=log))
    redis = stores.redis_url()
    await stores.flush_redis(redis)
    figures.append(await _one("PostgreSQL", stores.postgres_url(), redis,
                              open_count=open_count, runs=runs, log=log))
    return figures


async def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = await measure(open_count=args.open, runs=args.runs,
                            log=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(figures))
    return 1 if any(f.met is not True for f in figures) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
