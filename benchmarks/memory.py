"""c. Memory: the peak RSS of a process running socialcare with 10,000 open cases, on the
embedded default (SQLite and the in-process Redis) and on PostgreSQL + Redis.

The process is a child of the benchmark, so that nothing of the benchmark itself
(the fakes, the seeding) counts: it runs what `socialcare run` runs — the composition
root's `runtime` and `build_app` with PostgreSQL, Redis, Slack and Telegram (the fakes,
served by the parent) — for a while, during which the dispatcher posts cards within
the rate limits and the scheduler ticks, then reports its peak resident set
(VmHWM in /proc/self/status, the same as getrusage's ru_maxrss) and exits; see
`benchmarks.memory_child`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import fake_chat, open_cases, running, stores
from benchmarks.table import Figure, at_most

TARGET_MB = 200.0  # PostgreSQL + Redis
EMBEDDED_TARGET_MB = 150.0


async def _run_child(args: dict[str, Any]) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.memory_child", json.dumps(args),
        cwd=running.ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"memory child failed ({child.returncode}): "
                           f"{err.decode(errors='replace')[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def measure(*, open_count: int, seconds: float, runs: int,
                  log: Any = print) -> list[Figure]:
    """Measure the running app's peak RSS `runs` times, `seconds` of running each, on the
    embedded default and on PostgreSQL + Redis."""
    with tempfile.TemporaryDirectory(prefix="socialcare-memory-") as directory:
        embedded = await _measure(stores.sqlite_url(Path(directory)), None, "embedded default",
                                  EMBEDDED_TARGET_MB, open_count=open_count, seconds=seconds,
                                  runs=runs, log=log)
    server = await _measure(stores.postgres_url(), stores.redis_url(), "PostgreSQL + Redis",
                            TARGET_MB, open_count=open_count, seconds=seconds, runs=runs,
                            log=log)
    return [embedded, server]


async def _measure(url: str, redis: str | None, name: str, target: float, *,
                   open_count: int, seconds: float, runs: int, log: Any) -> Figure:
    if await open_cases.count_open(url) != open_count:
        await stores.reset_database(url)
        await open_cases.seed(url, open_count)
        log(f"  c. seeded {open_count:,} open cases ({name})")
    results = []
    for run in range(runs):
        if redis is not None:
            await stores.flush_redis(redis)
        async with fake_chat.fakes() as fakes:
            args = {"database_url": url, "redis_url": redis, "port": running.free_port(),
                    "endpoints": asdict(fakes.endpoints()), "seconds": seconds}
            result = await _run_child(args)
            result["cards_posted"] = _cards_posted(fakes)
        results.append(result)
        log(f"  c. {name}, run {run + 1}/{runs}: peak {result['peak_kb'] / 1024:.1f} MB, at "
            f"the end {result['end_kb'] / 1024:.1f} MB, {result['cards_posted']} cards posted")
    posted = sorted(r["cards_posted"] for r in results)
    peaks = [r["peak_kb"] / 1024 for r in results]
    note = (f"child process running runtime + build_app ({name}, Slack and Telegram fakes) "
            f"with {open_count:,} open cases for {seconds:g} s; peak {min(peaks):.0f}-"
            f"{max(peaks):.0f} MB; RSS at the end "
            f"{min(r['end_kb'] for r in results) / 1024:.0f}-"
            f"{max(r['end_kb'] for r in results) / 1024:.0f} MB; cards posted per run "
            f"{posted[0]}-{posted[-1]} (rate limits); load average "
            f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    return at_most(f"c. peak RSS, {open_count:,} open cases, {name}", peaks, "MB", target,
                   note=note, detail={"runs": results})


def _cards_posted(fakes: fake_chat.Fakes) -> int:
    calls = []
    if fakes.slack is not None:
        calls += fakes.slack.calls_to("chat.postMessage")
    if fakes.telegram is not None:
        calls += fakes.telegram.calls_to("sendMessage")
    return sum(1 for call in calls if call.ok)

