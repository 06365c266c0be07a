"""Requests someone waits for, ahead of the work no one waits for.

Slack waits for the answer to each of its requests (3 s at most, and every millisecond
shows as a slow button); no one waits for the work after an ack, the cards being
synced or the timers' sweeps. All of it shares one event loop, so every step of
background work taken while a request is unanswered delays that answer. A request
counts itself in flight while it is answered (`answering`); other work gives way at
its checkpoints (`give_way`: every unit of work's start): it waits until no request is
in flight and none has been answered for `LULL` seconds — clicks in a row come a
fraction of a millisecond after the answer before them, and work let in between would
run beside the next one's answer — for `GIVE_WAY_AT_MOST` seconds at most, so that a
stream of requests slows it down but never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

# The longest a checkpoint waits for the requests in flight: a few batches of clicks.
GIVE_WAY_AT_MOST = 0.5
# How long after an answer the next request of a stream is waited for.
LULL = 0.005


class Foreground:
    """The requests in flight that the rest of the process gives way to."""

    def __init__(self, *, at_most: float = GIVE_WAY_AT_MOST, lull: float = LULL) -> None:
        self._count = 0
        self._at_most = at_most
        self._lull = lull
        self._answered_at = float("-inf")  # the event loop's time of the last answer
        self._idle: asyncio.Event | None = None

    @property
    def busy(self) -> bool:
        """Tell whether a request is in flight."""
        return self._count > 0

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Count a request in flight until the block has its answer."""
        self._count += 1
        if self._idle is not None:
            self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            self._answered_at = asyncio.get_running_loop().time()
            if self._count == 0 and self._idle is not None:
                self._idle.set()

    async def give_way(self) -> None:
        """Return once no request is in flight and none was answered for the lull, or
        after `at_most` seconds.

        Those that waited resume together when the last answer goes; each looks again,
        so that a request that came meanwhile is answered first."""
        loop = asyncio.get_running_loop()
        if self._count == 0 and loop.time() - self._answered_at >= self._lull:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
            if self._count == 0:
                self._idle.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._at_most):
                while True:
                    if self._count:
                        await self._idle.wait()
                        continue
                    quiet = loop.time() - self._answered_at
                    if quiet >= self._lull:
                        return
                    await asyncio.sleep(self._lull - quiet)
