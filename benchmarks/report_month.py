"""Time `/report month` over a million cases on PostgreSQL, against one scan of the month.

    python -m benchmarks.report_month [--cases 1000000] [--runs 5]

Seeds (once, and again only if the count differs) a benchmark database with cases
and their facts spread over the current month, then, in turns, builds the month's
report — the query path of `/report month` — and runs the baseline: one query that
counts the month's cases and takes the median and 90th percentile of their reaction
times (`percentile_cont`), a single scan and sort. The figure is the ratio of the two
in each turn, median over the turns (target ≤ 2.5 ×), with the range. The
database is BENCH_REPORT_DATABASE_URL (default:
postgresql+asyncpg://postgres@127.0.0.1:5432/socialcare_bench, created if missing) —
not BENCH_DATABASE_URL, which the other benchmarks wipe before each measurement.
Results are also written to benchmarks/results/report_month.json; `python -m
benchmarks` runs this too, with every other figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.bot.reports import Period, parse_period
from socialcare.storage import rollups
from socialcare.storage.database import SqlUnitOfWork, create_engine, upgrade
from socialcare.storage.reports import WORK_MEM
from socialcare.storage.schema import case_facts

from .stores import ensure_database

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/socialcare_bench"
ZONE = ZoneInfo("Asia/Almaty")
RESULTS = Path(__file__).parent / "results"
TARGET_RATIO = 2.5
# The baseline: one count-and-percentile scan of the month, as the report's queries run
# (the report's session settings: no parallel workers, the same work_mem).
BASELINE = text(
    "SELECT count(*), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP "
    "(ORDER BY reaction_seconds) FROM case_facts "
    "WHERE published_at >= :start AND published_at < :end")

# Cases spread evenly over [start, end); a fifth unanswered, a tenth dismissed, a third
# answered late; two of three resolved after 1-4 messages; forum cases every fourth.
SEED = """
WITH spread AS (
    SELECT n, CAST(:start AS timestamptz)
              + make_interval(secs => CAST(:span AS double precision) * n / :count) AS published
    FROM generate_series(1, :count) AS n
)
INSERT INTO {table} ({columns})
SELECT {values} FROM spread
"""
CASES = {
    "id": "n", "brand": "CASE WHEN n % 3 = 0 THEN 'activ' ELSE 'Kcell' END",
    "source": "CASE WHEN n % 4 = 0 THEN 'forums' ELSE 'webhook' END",
    "platform": "(ARRAY['instagram','vk','facebook','youtube','x','forum'])[1 + n % 6]",
    "tier": "CASE WHEN n % 4 = 0 THEN 'extra' ELSE 'main' END", "priority": "'high'",
    "thread_key": "n::text", "state": "CASE WHEN n % 10 = 0 THEN 'dismissed' ELSE 'resolved' END",
    "published_at": "published", "collected_at": "published + interval '40 seconds'",
    "response_cycle": "1", "response_alerts": "0", "resolve_alerts": "0", "version": "0",
}
FACTS = {
    "case_id": "n", "tier": "CASE WHEN n % 4 = 0 THEN 'extra' ELSE 'main' END",
    "platform": "(ARRAY['instagram','vk','facebook','youtube','x','forum'])[1 + n % 6]",
    "brand": "CASE WHEN n % 3 = 0 THEN 'activ' ELSE 'Kcell' END",
    "source": "CASE WHEN n % 4 = 0 THEN 'forums' ELSE 'webhook' END",
    "published_at": "published", "collected_at": "published + (n % 300) * interval '1 second'",
    "response_due_at": "published + CASE WHEN n % 4 = 0 THEN interval '60 minutes' "
                       "ELSE interval '15 minutes' END",
    "standing": "CASE WHEN n % 10 = 0 THEN 'dismissed' WHEN n % 3 = 0 THEN 'open' "
                "ELSE 'resolved' END",
    "first_answer_at": "CASE WHEN n % 5 = 0 THEN NULL "
                       "ELSE published + (n % 1500) * interval '1 second' END",
    "first_answer_by": "CASE WHEN n % 5 = 0 THEN NULL ELSE 'agent' || (n % 30) END",
    "resolved_at": "CASE WHEN n % 10 <> 0 AND n % 3 <> 0 "
                   "THEN published + (n % 20000) * interval '1 second' END",
    "messages_to_resolve": "CASE WHEN n % 10 <> 0 AND n % 3 <> 0 THEN 1 + n % 4 END",
    "second_line_seconds": "0",
    "reaction_seconds": "CASE WHEN n % 5 = 0 THEN NULL ELSE (n % 1500)::float END",
    "lag_seconds": "(n % 300)::float",
    "resolution_seconds": "CASE WHEN n % 10 <> 0 AND n % 3 <> 0 THEN (n % 20000)::float END",
}


def database_url() -> str:
    """Return the URL of the million-case database."""
    return os.environ.get("BENCH_REPORT_DATABASE_URL", DEFAULT_URL)


async def seed(url: str, count: int, start: datetime, end: datetime) -> float:
    """Fill the database with `count` cases over [start, end); return the seconds taken."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            have = (await conn.execute(select(func.count()).select_from(case_facts))).scalar()
        began = time.perf_counter()
        if have != count:
            await _fill(engine, count, start, end)
        async with engine.begin() as conn:
            # A running system folds the roll-ups' rows of changes as they pile up (a
            # database seeded before the roll-ups were has them from the migration).
            await rollups.fold(conn, above=0)
            await conn.execute(text("ANALYZE case_facts, report_counts, report_durations"))
        return time.perf_counter() - began if have != count else 0.0
    finally:
        await engine.dispose()


async def _fill(engine: AsyncEngine, count: int, start: datetime, end: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE cases, mentions, events, cards, case_facts, "
                                "escalation_cases, escalation_events, escalations, "
                                "wallboard_open, wallboard_sla, report_counts, "
                                "report_durations CASCADE"))
        for table, columns in (("cases", CASES), ("case_facts", FACTS)):
            sql = SEED.format(table=table, columns=", ".join(columns),
                              values=", ".join(columns.values()))
            await conn.execute(text(sql), {"start": start,
                                           "span": (end - start).total_seconds(),
                                           "count": count})


async def _baseline(engine: AsyncEngine, period: Period) -> float:
    """Run the baseline once; return the seconds it took."""
    began = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execute(select(func.set_config("work_mem", WORK_MEM, True),
                                  func.set_config("max_parallel_workers_per_gather", "0",
                                                  True)))
        (await conn.execute(BASELINE, {"start": period.start, "end": period.end})).one()
    return time.perf_counter() - began


async def time_report(url: str, runs: int, now: datetime) -> tuple[list[float], list[float], int]:
    """Build the month's report and run the baseline in turns, `runs` times each (which
    goes first alternating); return both timings and the cases counted."""
    engine = create_engine(url)
    period = parse_period("month", now=now, zone=ZONE)
    timings: list[float] = []
    baselines: list[float] = []
    try:
        await _baseline(engine, period)  # warm: the month's pages in the server's cache
        for run in range(runs):
            if run % 2:
                baselines.append(await _baseline(engine, period))
            began = time.perf_counter()
            async with SqlUnitOfWork(engine) as uow:
                report = await uow.reports.report(period, now=now)
            timings.append(time.perf_counter() - began)
            if not run % 2:
                baselines.append(await _baseline(engine, period))
    finally:
        await engine.dispose()
    return timings, baselines, report.total.cases


async def is_seeded(url: str, count: int) -> bool:
    """Tell whether the benchmark database already holds `count` cases' facts."""
    parsed = make_url(url)
    try:
        conn = await asyncpg.connect(host=parsed.host, port=parsed.port,
                                     user=parsed.username, password=parsed.password,
                                     database=parsed.database)
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        have = await conn.fetchval("SELECT count(*) FROM case_facts")
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()
    return bool(have == count)


async def measure(url: str, *, cases: int, runs: int) -> dict[str, Any]:
    """Seed (if needed) and time the month's report against the baseline; save and
    return the result."""
    now = datetime.now(UTC)
    period = parse_period("month", now=now, zone=ZONE)
    await ensure_database(url)
    seeded = await seed(url, cases, period.start, min(period.end, now))
    timings, baselines, counted = await time_report(url, runs, now)
    ratios = [t / b for t, b in zip(timings, baselines, strict=True)]
    ratio = statistics.median(ratios)
    result: dict[str, Any] = {
        "benchmark": "/report month", "database": "postgresql", "cases": counted,
        "runs": len(timings), "median_seconds": round(statistics.median(timings), 3),
        "min_seconds": round(min(timings), 3), "max_seconds": round(max(timings), 3),
        "timings": [round(t, 3) for t in timings],
        "baseline_median_seconds": round(statistics.median(baselines), 3),
        "baselines": [round(b, 3) for b in baselines],
        "ratios": [round(r, 3) for r in ratios], "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO,
        "seed_seconds": round(seeded, 1), "at": now.isoformat(timespec="seconds"),
        "load": "/".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_month.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = await measure(database_url(), cases=args.cases, runs=args.runs)
    print(f"{'benchmark':<16} {'cases':>10} {'report s':>9} {'baseline s':>11} "
          f"{'ratio':>6} {'min':>6} {'max':>6} {'target':>7} {'met':>4}  load")
    print(f"{result['benchmark']:<16} {result['cases']:>10,} {result['median_seconds']:>9.3f} "
          f"{result['baseline_median_seconds']:>11.3f} {result['ratio']:>6.2f} "
          f"{min(result['ratios']):>6.2f} {max(result['ratios']):>6.2f} "
          f"{TARGET_RATIO:>7.1f} {'yes' if result['met'] else 'NO':>4}  {result['load']}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
