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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from socialcare.deps import Deps
from socialcare.handlers import background

log = logging.getLogger(__name__)

Stream = asyncio.Queue[str | None]
# How often a case that a page shows is looked at for changes.
CASE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# Streams one session may hold open at once (a wallboard and some case pages).
STREAMS_PER_SESSION = 8


class TooManyStreams(Exception):
    """The session already holds STREAMS_PER_SESSION streams open."""


def put_latest(stream: Stream, item: str | None) -> None:
    """Put `item` in the stream, dropping what the browser has not taken yet."""
    with contextlib.suppress(asyncio.QueueEmpty):
        stream.get_nowait()
    stream.put_nowait(item)


@dataclass(eq=False)
class OpenStream:
    """A stream being sent to a browser, and whose session it serves."""

    person_id: str
    session: str  # the session token's hash
    updates: Stream
    ended: bool = False  # its session was signed out


class Audience:
    """The streams open in this process, so that signing out ends them at once."""

    def __init__(self) -> None:
        self._open: set[OpenStream] = set()

    @contextlib.contextmanager
    def opened(self, person_id: str, session: str, updates: Stream) -> Iterator[OpenStream]:
        """Count a stream as open while inside (raises TooManyStreams)."""
        if sum(1 for s in self._open if s.session == session) >= STREAMS_PER_SESSION:
            raise TooManyStreams()
        stream = OpenStream(person_id, session, updates)
        self._open.add(stream)
        try:
            yield stream
        finally:
            self._open.discard(stream)

    def end(self, *, session: str | None = None, person_id: str | None = None) -> None:
        """End the streams of a session, or of every session of a person."""
        for stream in self._open:
            if stream.session == session or stream.person_id == person_id:
                stream.ended = True
                put_latest(stream.updates, None)


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
            background.stop_if_asked()
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
                background.stop_if_asked()
                log.exception("case #%d: cannot look for changes; trying again in %.0f s",
                              case_id, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(backoff)
