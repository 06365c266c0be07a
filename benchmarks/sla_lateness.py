"""b. SLA point lateness: how long after its due time each SLA point fires, with
10,000 open cases, on PostgreSQL and Redis.

10,000 open cases are stored through the real pipeline; the running app's own
scheduler (`socialcare.handlers.scheduler`, one tick a second, on the system clock)
does the firing. For a run, the next point of `due` of the cases is moved to fall
evenly over the next `window` seconds: each case's clocks are shifted together (the
published, started, due and next-alert times), as if those customers had written
that much earlier. A point's firing time is when the scheduler logs it — after its
transaction committed — and its lateness is that minus its due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from benchmarks import open_cases, running, stores
from benchmarks.table import Figure, at_most, percentile
from socialcare.storage.database import create_engine

TARGET_SECONDS = 2.0
# Points come due from this long after the shift, so the shift itself is never late.
LEAD_SECONDS = 2.0
# After the window, how long to wait for the stragglers before calling them unfired.
DRAIN_SECONDS = 90.0
SCHEDULER_LOG = "socialcare.handlers.scheduler"

# Moves the next point of the first `due` open cases (by id) to t0 + rank * step, and
# the rest an hour past the window, shifting each case's clocks by the same amount.
_SHIFT = """
WITH ranked AS (
    SELECT id, next_alert_at, row_number() OVER (ORDER BY id) - 1 AS rank
    FROM cases WHERE next_alert_at IS NOT NULL
), moved AS (
    SELECT id, rank,
           CASE WHEN rank < :due
                THEN CAST(:t0 AS timestamptz)
                     + make_interval(secs => rank * CAST(:step AS double precision))
                ELSE CAST(:t0 AS timestamptz) + interval '1 hour'
                     + make_interval(secs => rank * 0.01)
           END - next_alert_at AS delta
    FROM ranked
)
UPDATE cases AS c SET
    published_at = c.published_at + m.delta,
    response_started_at = c.response_started_at + m.delta,
    response_due_at = c.response_due_at + m.delta,
    resolve_due_at = c.resolve_due_at + m.delta,
    claimed_at = c.claimed_at + m.delta,
    next_alert_at = c.next_alert_at + m.delta,
    version = c.version + 1
FROM moved AS m
WHERE c.id = m.id AND m.rank < :due
RETURNING c.id, c.next_alert_at
"""


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
            return {case_id: at.timestamp() for case_id, at in rows}
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


async def measure(*, open_count: int, due: int, window: float, runs: int,
                  log: Any = print) -> list[Figure]:
    """Measure SLA point lateness over `runs` runs of `due` points in `window` seconds."""
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    began = time.perf_counter()
    await open_cases.seed(url, open_count)
    log(f"  b. seeded {open_count:,} open cases in {time.perf_counter() - began:.1f} s")
    scheduler_log = logging.getLogger(SCHEDULER_LOG)
    fired = FiredPoints()
    level, propagate = scheduler_log.level, scheduler_log.propagate
    scheduler_log.addHandler(fired)
    scheduler_log.setLevel(logging.INFO)
    scheduler_log.propagate = False
    results = []
    try:
        config = running.settings(url, redis, port=running.free_port())
        async with running.serving(config):
            for run in range(runs):
                result = await _one_run(url, fired, due=due, window=window)
                results.append(result)
                log(f"  b. run {run + 1}/{runs}: {result['points']:,} points, p50 "
                    f"{result['p50']:.2f} s, p99 {result['p99']:.2f} s, max "
                    f"{result['max']:.2f} s, unfired {result['unfired']}")
    finally:
        scheduler_log.removeHandler(fired)
        scheduler_log.setLevel(level)
        scheduler_log.propagate = propagate
    unfired = sum(r["unfired"] for r in results)
    note = (f"{open_count:,} open cases; {due:,} points due over {window:g} s "
            f"({due / window:.0f}/s), PostgreSQL + Redis; max "
            f"{max(r['max'] for r in results):.1f} s")
    if unfired:
        note += (f"; {unfired} point(s) not fired within {DRAIN_SECONDS:g} s after the "
                 "window, counted as fired then (a lower bound)")
    detail = {"open_cases": open_count, "points": due, "window_seconds": window,
              "runs": results}
    return [
        at_most("b. SLA point lateness p50", [r["p50"] for r in results], "s"),
        at_most("b. SLA point lateness p99", [r["p99"] for r in results], "s",
                TARGET_SECONDS, note=note, detail=detail),
    ]
