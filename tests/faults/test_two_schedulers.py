"""Two `socialcare run --role scheduler` processes on one PostgreSQL and one Redis:
every SLA point fires exactly once, whichever process gets to it, and a surge opens
one incident.

The two take turns through a Redis lease; a third scheduler, run by the test, sweeps
without it (as a scheduler does while Redis is away), so that points also fall due
under two sweeps at once and only the database's conditional update stands between
them and a second firing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from socialcare.adapters.clock import SystemClock
from socialcare.bot import incidents as incident_service
from socialcare.bot import timers
from socialcare.bot.model import Author, EventKind, RawMention
from socialcare.bot.pipeline import Pipeline
from socialcare.handlers import scheduler
from socialcare.settings import load_catalog, load_team
from socialcare.storage import redis as redis_store
from socialcare.storage.database import SqlUnitOfWork, create_engine
from socialcare.storage.schema import events, incidents
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL, reset_database
from tests.corpus.outage import OUTAGE_MINUTES, outage
from tests.e2e.chat import free_port

pytestmark = pytest.mark.skipif(
    TEST_DATABASE_URL is None or TEST_REDIS_URL is None,
    reason="two processes share one database and one Redis only on the servers "
           "(TEST_DATABASE_URL and TEST_REDIS_URL); the embedded back end is one process",
)

SCRIPT = str(Path(sys.executable).parent / "socialcare")
# Main tier: 15 minutes to answer, warnings at 50 % and 80 %, a reminder every 5 min.
CONFIG = ROOT / "config.example.toml"
# Minutes since publication at which each kind of case has its next point: the 50 %
# warning, the 80 % one, the breach, the first reminder. Every earlier point is overdue.
POINT_AT = {"warning 50%": 7.5, "warning 80%": 12.0, "breach": 15.0, "breach +5 min": 20.0}
# Cases of each kind have that point fall due this many seconds after they are stored:
# at all phases of the schedulers' one-second ticks, so that each gets to fire some.
DUE_IN = [k * 0.45 for k in range(16)]


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "SLACK_", "TELEGRAM_"))}
    assert TEST_DATABASE_URL is not None and TEST_REDIS_URL is not None
    return env | {
        "CONFIG_FILE": str(CONFIG), "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL, "HTTP_PORT": str(port),
        "INGEST_WEBHOOK_SECRET": "two-schedulers-secret",
    }


async def _start_scheduler(port: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SCRIPT, "run", "--role", "scheduler", env=_env(port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


async def _until_up(process: asyncio.subprocess.Process, port: int) -> None:
    """Wait for the process's /healthz to answer 200; fail if it exits first."""
    deadline = asyncio.get_running_loop().time() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            if process.returncode is not None:
                output = (await process.communicate())[0].decode()
                raise AssertionError(f"scheduler on port {port} exited:\n{output}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"scheduler on port {port} not up within 30 s")
            await asyncio.sleep(0.2)


@dataclass
class _Schedulers:
    """Two scheduler processes running, the test's own engine on their database, and
    (once they have stopped) what each printed."""

    processes: list[asyncio.subprocess.Process]
    engine: Any
    outputs: list[str] = field(default_factory=list)


@asynccontextmanager
async def _two_schedulers() -> AsyncIterator[_Schedulers]:
    """Start two `socialcare run --role scheduler` processes on a wiped database and
    Redis and wait for both; stop them (SIGTERM) at the end and keep their output."""
    assert TEST_DATABASE_URL is not None
    await reset_database(TEST_DATABASE_URL)
    redis = redis_store.connect(TEST_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    ports = [free_port(), free_port()]
    running = _Schedulers([await _start_scheduler(port) for port in ports],
                          create_engine(TEST_DATABASE_URL))
    try:
        await asyncio.gather(*(_until_up(p, port) for p, port in zip(running.processes, ports,
                                                                      strict=True)))
        yield running
    finally:
        for process in running.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        running.outputs[:] = [(await asyncio.wait_for(p.communicate(), 30))[0].decode()
                              for p in running.processes]
        await running.engine.dispose()


def _cases_due_soon(now: datetime) -> tuple[list[RawMention], dict[str, set[int]]]:
    """Return mentions whose next SLA point falls due in the next few seconds, and the
    point indexes (0, 1: warnings; 2: breach; 3: first reminder) each must fire."""
    raws, expected = [], {}
    for index, minutes in enumerate(POINT_AT.values()):
        for k, seconds in enumerate(DUE_IN):
            external_id = f"p{index}-{k}"
            published = now - timedelta(minutes=minutes) + timedelta(seconds=seconds)
            raws.append(RawMention(
                source="webhook", external_id=external_id, platform="instagram",
                text=f"Kcell, question {external_id}", published_at=published,
                author=Author(id=external_id, name=f"Customer {external_id}"),
            ))
            expected[external_id] = set(range(index + 1))
    return raws, expected


async def _sweep_without_lease(uow: Any, stop: asyncio.Event, fired: list[Any]) -> None:
    """Be a third scheduler that skips the Redis lease (as one does while Redis is
    away), at a scheduler's pace: only the database keeps it from firing what the
    processes fire at the same moment."""
    team = load_team(CONFIG)
    while not stop.is_set():
        fired += await timers.fire_due(uow=uow(), clock=SystemClock(), config=team.sla)
        await asyncio.sleep(scheduler.TICK_SECONDS)


async def test_two_scheduler_processes_fire_every_sla_point_exactly_once() -> None:
    stop = asyncio.Event()
    by_test: list[Any] = []
    sweeper: asyncio.Task[None] | None = None
    async with _two_schedulers() as running:
        engine = running.engine
        try:
            raws, expected = _cases_due_soon(datetime.now(UTC))
            results = await Pipeline(load_team(CONFIG), clock=SystemClock()).ingest(
                raws, uow=SqlUnitOfWork(engine))
            case_of = {raw.external_id: result.case_id
                       for raw, result in zip(raws, results, strict=True)}
            assert None not in case_of.values()
            sweeper = asyncio.create_task(
                _sweep_without_lease(lambda: SqlUnitOfWork(engine), stop, by_test))
            want = {(case_of[external_id], index)
                    for external_id, indexes in expected.items() for index in indexes}

            deadline = asyncio.get_running_loop().time() + max(DUE_IN) + 20
            while (missing := want - {(case, index)
                                      for case, index, _ in await _fired(engine)}):
                assert asyncio.get_running_loop().time() < deadline, f"never fired: {missing}"
                await asyncio.sleep(0.25)
            await asyncio.sleep(2.0)  # time for a point to fire twice, if it could
            stop.set()
            await sweeper
            fired = await _fired(engine)
        finally:
            stop.set()
            if sweeper is not None and not sweeper.done():
                sweeper.cancel()
    processes, outputs = running.processes, running.outputs

    twice = {point: n for point, n in Counter(fired).items() if n > 1}
    assert not twice, f"fired more than once: {twice}"
    assert {(case, index) for case, index, _ in fired} == want
    assert all(p.returncode == 0 for p in processes), outputs
    # Each point was logged once, by the one scheduler (or the test's sweeper) that fired it.
    logged = [len(re.findall(r"SLA (warning|breach)", output)) for output in outputs]
    assert sum(logged) + len(by_test) == len(want), (logged, len(by_test), len(want))
    assert sum(logged) > 0, "the processes fired nothing: the test's sweeper beat them to all"


async def _fired(engine: Any) -> list[tuple[int, int, int]]:
    """Return (case, point index, response cycle) of every SLA point fired."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(events.c.case_id, events.c.data)
                                  .where(events.c.kind == EventKind.SLA_POINT.value))
        return [(row.case_id, int(row.data["index"]), int(row.data["cycle"])) for row in rows]


def _outage_now(now: datetime) -> list[RawMention]:
    """Return the outage corpus's 200 mentions, published over the last 15 minutes."""
    return [RawMention(source="webhook", external_id=m["external_id"], text=m["text"],
                       platform=m["platform"],
                       published_at=datetime.fromisoformat(m["published_at"]),
                       author=Author(id=m["external_id"], name=m["author"]["handle"]))
            for slot in outage(now - timedelta(minutes=OUTAGE_MINUTES))
            for m in slot.mentions]


async def _detect_without_lease(uow: Any, stop: asyncio.Event, opened: list[Any]) -> None:
    """Be a third scheduler looking for surges without the Redis lease: only the
    database keeps it from opening what the processes open at the same moment."""
    team = load_team(CONFIG)
    text = load_catalog(team.language)
    while not stop.is_set():
        opened += await incident_service.detect(uow=uow(), clock=SystemClock(), team=team,
                                                text=text)
        await asyncio.sleep(0.2)


async def test_two_scheduler_processes_open_one_incident_for_one_surge() -> None:
    stop = asyncio.Event()
    by_test: list[Any] = []
    detector: asyncio.Task[None] | None = None
    async with _two_schedulers() as running:
        engine = running.engine
        try:
            team = load_team(CONFIG)
            await Pipeline(team, clock=SystemClock()).ingest(_outage_now(datetime.now(UTC)),
                                                             uow=SqlUnitOfWork(engine))
            detector = asyncio.create_task(
                _detect_without_lease(lambda: SqlUnitOfWork(engine), stop, by_test))
            # The processes look every check_seconds; both have looked after two of them.
            await asyncio.sleep(2 * team.incidents.check_seconds + 5)
            stop.set()
            await detector
            async with engine.connect() as conn:
                opened = (await conn.execute(select(incidents.c.id, incidents.c.topic,
                                                    incidents.c.place))).all()
        finally:
            stop.set()
            if detector is not None and not detector.done():
                detector.cancel()
    processes, outputs = running.processes, running.outputs

    assert [(row.topic, row.place) for row in opened] == [("internet", "almaty")], opened
    assert all(p.returncode == 0 for p in processes), outputs
    # Opened once, by one of the processes or by the test's detector.
    logged = sum(len(re.findall(r"incident #\d+ opened", output)) for output in outputs)
    assert logged + len(by_test) == 1, (logged, by_test)
