"""Run socialcare as separate processes with roles, as an operator would, for fault tests."""

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
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.adapters.collectors.signature import sign
from tests.conftest import ROOT

SCRIPT = str(Path(sys.executable).parent / "socialcare")
SECRET = "fault-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running(tmp_path: Path, *roles: str, database_url: str, redis_url: str,
                  claim_seconds: float = 2.0) -> AsyncIterator[Process]:
    """Run `socialcare run --role …` until it answers /healthz; stop it at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "SLACK_", "TELEGRAM_"))} | {
        "CONFIG_FILE": str(ROOT / "config.example.toml"), "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "INGEST_WEBHOOK_SECRET": SECRET, "HTTP_PORT": str(port),
        "INGEST_CLAIM_SECONDS": str(claim_seconds),
    }
    log = (tmp_path / f"{'-'.join(roles)}-{port}.log").open("wb")
    args = [arg for role in roles for arg in ("--role", role)]
    process = await asyncio.create_subprocess_exec(SCRIPT, "run", *args, env=env,
                                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        yield Process(process, url)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
        log.close()


class Process:
    """A running socialcare process and its address."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def kill(self) -> int:
        """SIGKILL it, as the kernel's OOM killer or a pulled plug would; return its code."""
        self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()


def bodies(first: int, count: int, *, per_request: int = 500) -> list[bytes]:
    """Signed-`/ingest` bodies of `count` distinct mentions, each in its own thread."""
    published = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    items = [{
        "source": "webhook", "external_id": f"fault-{n}", "platform": "instagram",
        "text": f"Kcell, no signal at house {n}", "published_at": published,
        "author": {"id": f"c{n}", "name": f"Customer {n}"}, "thread_id": f"post-{n}",
    } for n in range(first, first + count)]
    return [json.dumps(items[i:i + per_request]).encode()
            for i in range(0, count, per_request)]


async def post_all(url: str, batch: list[bytes]) -> list[tuple[int, set[str]]]:
    """POST each body to `/ingest`; return each answer's status and outcomes."""
    answers = []
    async with aiohttp.ClientSession() as http:
        for body in batch:
            async with http.post(f"{url}/ingest", data=body,
                                 headers={"X-Signature": sign(body, SECRET)}) as answer:
                outcomes = {r["outcome"] for r in (await answer.json()).get("results", [])}
                answers.append((answer.status, outcomes))
    return answers


async def until(read: Callable[[], Awaitable[int]], done: Callable[[int], bool], *,
                seconds: float) -> int:
    """Read until `done` says so; fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            value = await read()
            if done(value):
                return value
            await asyncio.sleep(0.05)


async def count(engine: AsyncEngine, table: object) -> int:
    """How many rows a table holds."""
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]
