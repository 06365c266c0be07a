"""The loops a process runs beside its routes: started with the app, stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import io
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


def stop_if_asked() -> None:
    """Raise CancelledError if this task has been asked to stop.

    A loop calls it at the top of each round and before it takes an error for a passing
    failure: a client library may turn the cancellation that stops the loop into an
    error of its own (or swallow it), but the task's request to stop stays counted."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop(task: asyncio.Task[Any], *, seconds: float = STOP_SECONDS) -> None:
    """Cancel a task once and wait, at most `seconds`, for it to end.

    Once, not again and again: a task cancelled in the middle of a database call is
    still closing that connection (SQLAlchemy closes it in a shielded task), and a
    second cancellation cuts the close short and leaves it running for ever — the
    process, or a test's event loop, then never ends. A task cancelled already (the
    console's watchers, when the server stops) is not cancelled again."""
    if not task.cancelling():
        task.cancel()
    await asyncio.wait({task}, timeout=seconds)
    if not task.done():
        where = io.StringIO()
        task.print_stack(limit=12, file=where)
        log.error("%s did not stop within %.0f s; stopping without it. It waits at:\n%s",
                  task.get_name(), seconds, where.getvalue())
        return
    with contextlib.suppress(asyncio.CancelledError):
        error = task.exception()
        if error is not None:
            log.error("%s had stopped on an error", task.get_name(), exc_info=error)
