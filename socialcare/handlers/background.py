"""The loops a process runs beside its routes: started with the app, stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# How long a loop may take to stop before the process stops without it.
STOP_SECONDS = 10.0


def run_while_serving(app: web.Application, name: str,
                      loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `loop()` as a task from the app's start to its end."""

    async def running(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(loop(), name=name)
        yield
        await stop(task)

    app.cleanup_ctx.append(running)


async def stop(task: asyncio.Task[Any], *, seconds: float = STOP_SECONDS) -> None:
    """Cancel a task and wait for it to end, asking again while it runs on.

    A cancellation that lands inside a client library's own timeout can come back out
    as an error, which a loop's retry takes for a passing failure: the request is
    then lost, and one `cancel()` would leave the task running and the process
    waiting for it forever."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
        if not task.done() and asyncio.get_running_loop().time() > deadline:
            log.error("%s did not stop within %.0f s; stopping without it", task.get_name(),
                      seconds)
            return
    with contextlib.suppress(asyncio.CancelledError):
        error = task.exception()
        if error is not None:
            log.error("%s had stopped on an error", task.get_name(), exc_info=error)
