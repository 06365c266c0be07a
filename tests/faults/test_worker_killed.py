"""A worker killed with SIGKILL in the middle of a 10,000-mention ingest loses nothing:
once a worker runs again, every mention has exactly one case.

Separate processes share the queue through Redis, so this runs on the servers only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from socialcare.adapters.collectors.signature import sign
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases, inbox, mentions
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL, reset_database

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="processes with separate roles share Redis and a database server "
           "(set TEST_DATABASE_URL and TEST_REDIS_URL)")

SCRIPT = str(Path(sys.executable).parent / "socialcare")
SECRET = "worker-fault-secret"
MENTIONS = 10_000
PER_REQUEST = 500


def _env(port: int) -> dict[str, str]:
    assert TEST_DATABASE_URL and TEST_REDIS_URL
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "SLACK_", "TELEGRAM_"))}
    return env | {
        "CONFIG_FILE": str(ROOT / "config.example.toml"), "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL, "INGEST_WEBHOOK_SECRET": SECRET,
        "HTTP_PORT": str(port), "INGEST_CLAIM_SECONDS": "2",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _process(tmp_path: Path, *roles: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `socialcare run --role …` until it answers /healthz; stop it at the end."""
    port = _free_port()
    log = (tmp_path / f"{'-'.join(roles)}-{port}.log").open("wb")
    args = [arg for role in roles for arg in ("--role", role)]
    process = await asyncio.create_subprocess_exec(SCRIPT, "run", *args, env=_env(port),
                                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        process.port = port  # type: ignore[attr-defined]
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
        log.close()


def _bodies() -> list[bytes]:
    published = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    items = [{
        "source": "webhook", "external_id": f"fault-{n}", "platform": "instagram",
        "text": f"Kcell, no signal at house {n}", "published_at": published,
        "author": {"id": f"c{n}", "name": f"Customer {n}"}, "thread_id": f"post-{n}",
    } for n in range(MENTIONS)]
    return [json.dumps(items[i:i + PER_REQUEST]).encode()
            for i in range(0, MENTIONS, PER_REQUEST)]


async def test_a_worker_killed_mid_ingest_loses_and_doubles_nothing(tmp_path: Path) -> None:
    assert TEST_DATABASE_URL
    await reset_database(TEST_DATABASE_URL)
    engine = create_engine(TEST_DATABASE_URL)

    async def count(query: object) -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]

    try:
        async with _process(tmp_path, "collectors") as collector:
            answers = []
            async with aiohttp.ClientSession() as http:
                for body in _bodies():
                    async with http.post(f"http://127.0.0.1:{collector.port}/ingest",  # type: ignore[attr-defined]
                                         data=body,
                                         headers={"X-Signature": sign(body, SECRET)}) as answer:
                        answers.append((answer.status,
                                        {r["outcome"] for r in (await answer.json())["results"]}))
            async with _process(tmp_path, "workers") as doomed:
                await _until(lambda: count(select(func.count()).select_from(cases)),
                             lambda made: made >= MENTIONS // 5, seconds=120)
                doomed.send_signal(signal.SIGKILL)
                await doomed.wait()
            stored_when_killed = await count(select(func.count()).select_from(cases))
            async with _process(tmp_path, "workers"):
                await _until(lambda: count(select(func.count()).select_from(inbox)),
                             lambda waiting: waiting == 0, seconds=180)
        redis = Redis.from_url(TEST_REDIS_URL or "", decode_responses=True)
        pending = (await redis.xpending("ingest", "workers"))["pending"]
        await redis.aclose()
        stored = await count(select(func.count()).select_from(mentions))
        distinct = await count(select(func.count(func.distinct(mentions.c.external_id))))
        made = await count(select(func.count()).select_from(cases))
    finally:
        await engine.dispose()

    assert answers == [(202, {"queued"})] * (MENTIONS // PER_REQUEST)
    assert doomed.returncode == -signal.SIGKILL
    assert MENTIONS // 5 <= stored_when_killed < MENTIONS
    assert stored == distinct == made == MENTIONS
    assert pending == 0


async def _until(read: Callable[[], Awaitable[int]], done: Callable[[int], bool], *,
                 seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if done(await read()):
                return
            await asyncio.sleep(0.05)
