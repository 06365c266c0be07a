"""The console's live streams: what open pages are told, and when.

Every stream is a queue of size one holding the newest news for one browser (None: the
stream ends); a browser needs the latest state, never a backlog. Case pages are told
when their case changes: one watcher per case that anyone has open looks at its mark
once a second, for every page of that case, and stops when the last page closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from socialcare.deps import Deps
from socialcare.handlers import background

log = logging.getLogger(__name__)

Stream = asyncio.Queue[str | None]
# How often a case that a page shows is looked at for changes.
CASE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


def put_latest(stream: Stream, item: str | None) -> None:
    """Put `item` in the stream, dropping what the browser has not taken yet."""
    with contextlib.suppress(asyncio.QueueEmpty):
        stream.get_nowait()
    stream.put_nowait(item)


class CaseWatch:
    """Tells each open case page the case's new mark when it moves (None: it is gone)."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._pages: dict[int, dict[Stream, str]] = {}  # case → page → the mark it shows
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._closed = False

    @contextlib.asynccontextmanager
    async def listen(self, case_id: int, mark: str) -> AsyncIterator[Stream]:
        """Receive the case's mark whenever it is no longer `mark`, while inside."""
        stream: Stream = asyncio.Queue(maxsize=1)
        if self._closed:
            stream.put_nowait(None)
        pages = self._pages.setdefault(case_id, {})
        pages[stream] = mark
        if case_id not in self._watchers and not self._closed:
            self._watchers[case_id] = asyncio.create_task(self._watch(case_id),
                                                          name=f"case-{case_id}-pages")
        try:
            yield stream
        finally:
            del pages[stream]
            if not pages:
                del self._pages[case_id]
                watcher = self._watchers.pop(case_id, None)
                if watcher is not None:
                    await background.stop(watcher)

    def close(self) -> None:
        """End every stream, now and later: the server is stopping."""
        self._closed = True
        for watcher in self._watchers.values():
            watcher.cancel()
        for pages in self._pages.values():
            for stream in pages:
                put_latest(stream, None)

    async def _watch(self, case_id: int) -> None:
        backoff = CASE_SECONDS
        while True:
            try:
                async with self._deps.uow() as uow:
                    now = await uow.console.case_mark(case_id)
                pages = self._pages.get(case_id, {})
                for stream, shown in list(pages.items()):
                    if now != shown:
                        pages[stream] = now
                        put_latest(stream, now or None)
                backoff = CASE_SECONDS
            except Exception:
                log.exception("case #%d: cannot look for changes; trying again in %.0f s",
                              case_id, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(backoff)
