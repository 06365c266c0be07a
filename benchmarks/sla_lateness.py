"""b. SLA point lateness: how long after its due time each SLA point fires, with
100,000 open cases, on PostgreSQL and Redis — with no messenger, and with fake Slack
and Telegram configured (then the card dispatcher works through the cards of every
case at the messengers' rate limits meanwhile).

The open cases are stored through the real pipeline (and the database ANALYZEd); the
running app's own scheduler (`socialcare.handlers.scheduler`, on the system clock)
does the firing. Once seeded, every case's next point is parked an hour past the runs
(seeding takes minutes: points falling due meanwhile would be fired by the app's first
sweep while the first run moves them). For a run, the next point of `due` of the cases
is moved to fall evenly over the next `window` seconds. Each case's clocks are shifted
together (the published, started, due and next-alert times), as if those customers had
written that much earlier. A point's firing time is when the scheduler logs it — after
its transaction committed — and its lateness is that minus its due time. The runs of
the two set-ups alternate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from benchmarks import fake_chat, open_cases, running, stores
from benchmarks.table import Figure, at_most, percentile
from socialcare.storage.database import create_engine

TARGET_SECONDS = 1.0
# Points come due from this long after the shift, so the shift itself is never late.
LEAD_SECONDS = 5.0
# After the window, how long to wait for the stragglers before calling them unfired.
DRAIN_SECONDS = 90.0
SCHEDULER_LOG = "socialcare.handlers.scheduler"

# Moves the next point of the first `due` open cases (by id) to t0 + rank * step,
# shifting each case's clocks by the same amount.
_MOVE = """
UPDATE cases AS c SET
    published_at = c.published_at + m.delta,
    response_started_at = c.response_started_at + m.delta,
    response_due_at = c.response_due_at + m.delta,
    resolve_due_at = c.resolve_due_at + m.delta,
    claimed_at = c.claimed_at + m.delta,
    next_alert_at = c.next_alert_at + m.delta,
    version = c.version + 1
FROM moved AS m
WHERE c.id = m.id
"""
_SHIFT = """
WITH ranked AS (
    SELECT id, next_alert_at, row_number() OVER (ORDER BY id) - 1 AS rank
    FROM cases WHERE next_alert_at IS NOT NULL
), moved AS (
    SELECT id, rank,
           CAST(:t0 AS timestamptz) + make_interval(secs => rank * CAST(:step AS double precision))
           - next_alert_at AS delta
    FROM ranked WHERE rank < :due
)
""" + _MOVE + """
RETURNING c.id, c.next_alert_at
"""

# Once, after seeding: moves every case's next point an hour past the runs (spread a
# hundredth of a second apart), so that none comes due by itself during a run: each run
# moves its own points back.
_PARK = """
WITH ranked AS (
    SELECT id, next_alert_at, row_number() OVER (ORDER BY id) - 1 AS rank
    FROM cases WHERE next_alert_at IS NOT NULL
), moved AS (
    SELECT id, rank,
           now() + interval '1 hour' + make_interval(secs => rank * 0.01) - next_alert_at
           AS delta
    FROM ranked
)
""" + _MOVE


class FiredPoints(logging.Handler):
    """Note when the scheduler reports each SLA point it fired, by case id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fired: dict[int, float] = {}
        self.waiting: set[int] = set()
        self.all_fired = asyncio.Event()

    def expect(self, case_ids: set[int]) -> None:
        """Forget what fired so far; wait for these cases' points."""
        self.fired.clear()
        self.waiting = set(case_ids)
        self.all_fired.clear()

    def emit(self, record: logging.LogRecord) -> None:
        # "SLA %s: case #%d (%s tier), %s due %s%s" — logged once the point is stored.
        if isinstance(record.msg, str) and record.msg.startswith("SLA ") and record.args:
            args: Any = record.args
            case_id = int(args[1])
            self.fired.setdefault(case_id, record.created)
            self.waiting.discard(case_id)
            if not self.waiting:
                self.all_fired.set()


async def _shift(url: str, *, due: int, window: float) -> dict[int, float]:
    """Move the points; return each moved case's due time (Unix seconds)."""
    engine = create_engine(url)
    t0 = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(text(_SHIFT), {
                "due": due, "t0": t0, "step": window / due,
            })
            moved = {case_id: at.timestamp() for case_id, at in rows}
    finally:
        await engine.dispose()
    if time.time() > t0.timestamp():
        raise RuntimeError(f"moving the points took over {LEAD_SECONDS:g} s: the first "
                           "ones would count late for the benchmark's own work")
    return moved


async def _park(url: str) -> None:
    """Move every case's next point an hour past the runs."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_PARK))
    finally:
        await engine.dispose()


async def _one_run(url: str, fired: FiredPoints, *, due: int, window: float) -> dict[str, Any]:
    due_at = await _shift(url, due=due, window=window)
    fired.expect(set(due_at))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LEAD_SECONDS + window + DRAIN_SECONDS):
            await fired.all_fired.wait()
    ended = time.time()
    late = [fired.fired.get(case_id, ended) - at for case_id, at in due_at.items()]
    unfired = sum(1 for case_id in due_at if case_id not in fired.fired)
    return {"p50": percentile(late, 50), "p99": percentile(late, 99), "max": max(late),
            "points": len(due_at), "unfired": unfired}


async def _analyze(url: str) -> None:
    """Bring the planner's statistics up to date after seeding."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _serving_run(url: str, redis: str, fired: FiredPoints, *, messengers: bool,
                       due: int, window: float) -> dict[str, Any]:
    """Start socialcare (with the messengers' fakes or without), do one run, stop it."""
    async with contextlib.AsyncExitStack() as stack:
        endpoints = running.Endpoints()
        if messengers:
            endpoints = (await stack.enter_async_context(fake_chat.fakes())).endpoints()
        config = running.settings(url, redis, port=running.free_port(), messengers=endpoints)
        await stack.enter_async_context(running.serving(config))
        result = await _one_run(url, fired, due=due, window=window)
    result["load"] = [round(x, 2) for x in os.getloadavg()]
    return result


SETUPS = (("no messengers", False), ("Slack + Telegram", True))


async def measure(*, open_count: int, due: int, window: float, runs: int,
                  log: Any = print) -> list[Figure]:
    """Measure SLA point lateness over `runs` runs of `due` points in `window` seconds,
    with no messenger and with both, alternating."""
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    began = time.perf_counter()
    await open_cases.seed(url, open_count)
    await _park(url)
    await _analyze(url)
    log(f"  b. seeded {open_count:,} open cases in {time.perf_counter() - began:.1f} s")
    scheduler_log = logging.getLogger(SCHEDULER_LOG)
    fired = FiredPoints()
    level, propagate = scheduler_log.level, scheduler_log.propagate
    scheduler_log.addHandler(fired)
    scheduler_log.setLevel(logging.INFO)
    scheduler_log.propagate = False
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SETUPS}
    try:
        for run in range(runs):
            for name, messengers in SETUPS:
                result = await _serving_run(url, redis, fired, messengers=messengers,
                                            due=due, window=window)
                results[name].append(result)
                log(f"  b. run {run + 1}/{runs}, {name}: {result['points']:,} points, p50 "
                    f"{result['p50']:.2f} s, p99 {result['p99']:.2f} s, max "
                    f"{result['max']:.2f} s, unfired {result['unfired']}, load "
                    f"{result['load']}")
    finally:
        scheduler_log.removeHandler(fired)
        scheduler_log.setLevel(level)
        scheduler_log.propagate = propagate
    figures = []
    for name, _ in SETUPS:
        done = results[name]
        unfired = sum(r["unfired"] for r in done)
        note = (f"{open_count:,} open cases; {due:,} points due over {window:g} s "
                f"({due / window:.0f}/s), PostgreSQL + Redis; max "
                f"{max(r['max'] for r in done):.1f} s; p99 "
                f"{min(r['p99'] for r in done):.2f}–{max(r['p99'] for r in done):.2f} s; "
                f"load average {', '.join(str(r['load'][0]) for r in done)}")
        if unfired:
            note += (f"; {unfired} point(s) not fired within {DRAIN_SECONDS:g} s after the "
                     "window, counted as fired then (a lower bound)")
        detail = {"open_cases": open_count, "points": due, "window_seconds": window,
                  "runs": done}
        figures += [
            at_most(f"b. SLA point lateness p50, {name}", [r["p50"] for r in done], "s"),
            at_most(f"b. SLA point lateness p99, {name}", [r["p99"] for r in done], "s",
                    TARGET_SECONDS, note=note, detail=detail),
        ]
    return figures
