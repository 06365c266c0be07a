"""Clicks sent and timed from a process of their own (`python -m benchmarks.clicker`).

The benchmark's process also runs the fake messengers, which answer socialcare's card
edits after each ack; clicks timed on that event loop would wait for that work too,
and only on socialcare's side (the bare app makes no calls). This child does nothing
but send: it reads one batch a line on stdin — {"url", "requests": [[body, headers],
…], "at_once"} — sends the requests all at once or one after the other on one
kept-alive session, and writes one line back: the seconds each took from sending to
reading the answer, or {"error": why}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from benchmarks import running

Request = tuple[str, dict[str, str]]


class Clicker:
    """The parent's end of a clicking child."""

    def __init__(self, child: asyncio.subprocess.Process) -> None:
        self._child = child

    async def send(self, url: str, requests: list[Request], *, at_once: bool) -> list[float]:
        """Have the child send `requests` to `url`; return the seconds each took."""
        assert self._child.stdin is not None and self._child.stdout is not None
        line = json.dumps({"url": url, "requests": requests, "at_once": at_once})
        self._child.stdin.write(line.encode() + b"\n")
        await self._child.stdin.drain()
        answer = json.loads(await self._child.stdout.readline() or b'{"error": "exited"}')
        if isinstance(answer, dict):
            raise RuntimeError(f"the clicker: {answer['error']}")
        return [float(seconds) for seconds in answer]


@asynccontextmanager
async def clicker() -> AsyncIterator[Clicker]:
    """Start a clicking child; stop it on the way out."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.clicker", cwd=running.ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield Clicker(child)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10.0)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _timed(session: aiohttp.ClientSession, url: str, request: Request) -> float:
    body, headers = request
    began = time.perf_counter()
    async with session.post(url, data=body.encode(), headers=headers) as response:
        await response.read()
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise RuntimeError(f"{url} answered with {response.status}")
    return elapsed


async def _batch(session: aiohttp.ClientSession, batch: dict[str, Any]) -> list[float]:
    url, requests = batch["url"], [(body, headers) for body, headers in batch["requests"]]
    if batch["at_once"]:
        return list(await asyncio.gather(*(_timed(session, url, r) for r in requests)))
    return [await _timed(session, url, r) for r in requests]


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)  # a batch of ten signed clicks is a line
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession() as session:
        while line := await reader.readline():
            try:
                answer: Any = await _batch(session, json.loads(line))
            except (RuntimeError, aiohttp.ClientError, ValueError, KeyError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_serve())
