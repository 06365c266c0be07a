"""Run every benchmark of socialcare, print the table and save it as JSON.

    python -m benchmarks [--quick] [--only abcdefgh] [--markdown]

  a. ingest throughput, SQLite and PostgreSQL, vs a bare SQLAlchemy insert
  b. SLA point lateness (fired − due) with 100,000 open cases, with and without messengers
  c. peak RSS of the running app with 10,000 open cases, embedded default and PostgreSQL
  d. claim click → ack p99 ÷ a bare slack-bolt app's, each in its own process, 10
     clicks at once and one by one, with the garbage collector's pauses
  e. time to card of 200 main-tier mentions at once, over the rate-limit floor
  f. /report month over 1,000,000 cases ÷ one count-and-percentile scan of the month
     (benchmarks.report_month)
  g. single-mention signed POST /ingest at concurrency 50, PostgreSQL, and its 5xx:
     a collectors process answering 202 queued, and an all-roles one answering case ids
  h. the command line's start: socialcare --help and socialcare cases, whole commands
  i. ingest with word forms, language and topics vs exact-only matching; the language
     detector's memory (benchmarks.understanding)
  j. event-loop lag p99 while a 16 MB feed is parsed and a big /report is built, vs
     the idle loop (benchmarks.feeds)
  k. peak RSS polling every hostile feed at once: 16 MB, gzip bomb, malformed
  l. claim click → every card of the case updated in Slack and Telegram, 10 at once
  m. the wallboard's data (per-tier counters, today's share, the queue's first rows)
     with 100,000 open cases, SQLite and PostgreSQL (benchmarks.wallboard)

Each figure is the median of several runs; a "÷" row is a ratio taken run by run in
the same run. The run exits non-zero when a figure misses its target or fails.
`--quick` does fewer and smaller runs (and skips f unless its million
cases are already seeded): its figures are a smoke test, not comparable to a full run.
PostgreSQL and Redis: BENCH_DATABASE_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test_bench — wiped before each
measurement), BENCH_REDIS_URL (default redis://127.0.0.1:6379/14 — flushed), and
BENCH_REPORT_DATABASE_URL for f (default …/socialcare_bench, seeded once). The table
goes to benchmarks/results/latest.json (and full.json or quick.json); the app's
warnings to benchmarks/results/benchmark.log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy.engine import make_url

from benchmarks import (
    ack,
    cli_start,
    click_cards,
    concurrent_ingest,
    feeds,
    ingest,
    memory,
    report_month,
    sla_lateness,
    stores,
    time_to_card,
    understanding,
    wallboard,
)
from benchmarks.table import RESULTS, Figure, at_most, markdown, render, save

log = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Scale:
    """How much each benchmark does: a full run, or a quick one."""

    ingest_mentions: int
    ingest_runs: int
    sla_points: int
    sla_window: float
    sla_runs: int
    memory_seconds: float
    memory_runs: int
    clicks: int
    click_runs: int
    card_count: int
    card_runs: int
    report_runs: int
    concurrent_runs: int
    cli_runs: int
    card_click_rounds: int
    lag_runs: int = 3
    lag_report_cases: int = 200_000
    hostile_runs: int = 3
    wallboard_runs: int = 5


FULL = Scale(ingest_mentions=5_000, ingest_runs=5, sla_points=10_000, sla_window=60.0,
             sla_runs=3, memory_seconds=30.0, memory_runs=3, clicks=200, click_runs=3,
             card_count=200, card_runs=3, report_runs=5, concurrent_runs=3,
             cli_runs=9, card_click_rounds=3)
QUICK = Scale(ingest_mentions=1_000, ingest_runs=1, sla_points=2_500, sla_window=15.0,
              sla_runs=1, memory_seconds=10.0, memory_runs=1, clicks=100, click_runs=1,
              card_count=60, card_runs=1, report_runs=1, concurrent_runs=1,
              cli_runs=5, card_click_rounds=1, lag_runs=1, lag_report_cases=50_000,
              hostile_runs=1, wallboard_runs=3)
OPEN_CASES = 10_000
SLA_OPEN_CASES = 100_000
REPORT_CASES = 1_000_000
WALLBOARD_OPEN_CASES = 100_000


def progress(line: str) -> None:
    """Tell the person waiting how far the benchmarks are (stderr; the table is stdout)."""
    print(line, file=sys.stderr, flush=True)


async def report_figure(scale: Scale, quick: bool) -> list[Figure]:
    """f. Time /report month over a million cases (seeding them once, ~40 s), against one
    count-and-percentile scan of the month in the same run."""
    url = report_month.database_url()
    key = "f. /report month ÷ one scan of the month, 1,000,000 cases"
    if quick and not await report_month.is_seeded(url, REPORT_CASES):
        return [at_most(key, [], "×", report_month.TARGET_RATIO,
                        note="skipped under --quick: the million cases are not seeded yet "
                             "(python -m benchmarks.report_month seeds them)")]
    result = await report_month.measure(url, cases=REPORT_CASES,
                                        runs=max(3, scale.report_runs))
    ratios = cast(list[float], result["ratios"])
    return [
        at_most("f. /report month, 1,000,000 cases", cast(list[float], result["timings"]),
                "s"),
        at_most(key, ratios, "×", report_month.TARGET_RATIO,
                note=f"PostgreSQL; {result['cases']:,} cases counted in the month; report "
                     f"{result['median_seconds']} s, baseline (count + percentile_cont of "
                     f"the month's reaction times) {result['baseline_median_seconds']} s; "
                     f"ratio {min(ratios):.2f}–{max(ratios):.2f} over {len(ratios)} turns; "
                     f"load average {result['load']}; seeding took {result['seed_seconds']} s",
                detail=result),
    ]


def benchmarks(scale: Scale, quick: bool) -> dict[str, Callable[[], Awaitable[list[Figure]]]]:
    """Return each benchmark by its letter, ready to run."""
    return {
        "a": lambda: ingest.measure(count=scale.ingest_mentions, runs=scale.ingest_runs,
                                    log=progress),
        "b": lambda: sla_lateness.measure(open_count=SLA_OPEN_CASES, due=scale.sla_points,
                                          window=scale.sla_window, runs=scale.sla_runs,
                                          log=progress),
        "c": lambda: memory.measure(open_count=OPEN_CASES, seconds=scale.memory_seconds,
                                    runs=scale.memory_runs, log=progress),
        "d": lambda: ack.measure(clicks=scale.clicks, runs=scale.click_runs, log=progress),
        "e": lambda: time_to_card.measure(count=scale.card_count, runs=scale.card_runs,
                                          log=progress),
        "f": lambda: report_figure(scale, quick),
        "g": lambda: concurrent_ingest.measure(runs=scale.concurrent_runs, log=progress),
        "h": lambda: cli_start.measure(runs=scale.cli_runs, log=progress),
        "i": lambda: understanding.measure(count=scale.ingest_mentions // 2,
                                           runs=max(3, scale.ingest_runs), log=progress),
        "j": lambda: feeds.loop_lag(report_cases=scale.lag_report_cases, runs=scale.lag_runs,
                                    log=progress),
        "k": lambda: feeds.hostile_rss(runs=scale.hostile_runs, log=progress),
        "l": lambda: click_cards.measure(rounds=scale.card_click_rounds, log=progress),
        "m": lambda: wallboard.measure(open_count=WALLBOARD_OPEN_CASES,
                                       runs=scale.wallboard_runs, log=progress),
    }


async def run(letters: str, quick: bool) -> list[Figure]:
    """Run the chosen benchmarks in order; a failing one becomes a row saying so."""
    figures: list[Figure] = []
    for letter, measure in benchmarks(QUICK if quick else FULL, quick).items():
        if letter not in letters:
            continue
        progress(f"{letter}. …")
        began = time.perf_counter()
        try:
            figures += await measure()
        except Exception as error:
            log.exception("benchmark %s failed", letter)
            figures.append(Figure(f"{letter}. (failed)", None, "",
                                  note=f"{type(error).__name__}: {error}"))
        progress(f"{letter}. done in {time.perf_counter() - began:.0f} s")
    return figures


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=RESULTS.parent).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                               text=True, check=True, cwd=RESULTS.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer and smaller runs (about 2-3 minutes): a smoke test")
    parser.add_argument("--only", default="abcdefghijklm", metavar="LETTERS",
                        help="run only these benchmarks, e.g. --only ad (default: all)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the table in Markdown (for the README)")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    logging.basicConfig(filename=RESULTS / "benchmark.log", level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = datetime.now(UTC)
    began = time.perf_counter()
    figures = asyncio.run(run(args.only.lower(), args.quick))
    meta = {
        "at": started.isoformat(timespec="seconds"), "mode": "quick" if args.quick else "full",
        "seconds": round(time.perf_counter() - began), "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "database": make_url(stores.postgres_url()).render_as_string(hide_password=True),
        "redis": stores.redis_url(),
    }
    for name in ("latest.json", f"{meta['mode']}.json"):
        path = save(figures, meta, name)
    print(render(figures))
    print(f"\n{meta['mode']} run, {meta['seconds']} s, {meta['machine']}, "
          f"commit {meta['commit']}; saved to {path.parent}/latest.json")
    if args.markdown:
        print("\n" + markdown(figures))
    failed = any(f.value is None and "skipped" not in f.note for f in figures)
    return 1 if failed or any(f.met is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
