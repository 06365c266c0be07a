"""The wallboard: the open queue, earliest deadline first, and its live updates.

Cases change in any process, so the board watches the database, not this process's
memory: once a second one watcher per process reads a small mark (the newest event,
the open cases' count and summed versions); only when it moved — or every half
minute, for the day's share — does it read the queue, render the rows once, and push
them to every connected browser as a server-sent event. The countdowns run in the
browser from the absolute deadlines; the rows carry when each turns to warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from socialcare.bot.answers.phones import shared_excerpt
from socialcare.bot.cards import display_name, sla_line, warning_from
from socialcare.bot.model import Case, Mention, Priority, Tier
from socialcare.bot.reports import parse_period
from socialcare.console.incident_page import Banner, banners
from socialcare.console.pages import Pages
from socialcare.console.streams import Stream, put_latest
from socialcare.deps import Deps
from socialcare.handlers import background
from socialcare.storage.console import QueueMark

log = logging.getLogger(__name__)

ROWS = 100  # shown on the board; the counters count every open case
WORDS = 120  # characters of the first mention shown
POLL_SECONDS = 1.0
REFRESH_SECONDS = 30.0  # push even without a change: the day's share moves with time
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Row:
    """One open case on the board."""

    case_id: int
    tier: str
    platform: str
    brand: str
    author: str
    words: str
    holder: str
    state: str
    level: str  # calm, warning, overdue, settled
    sla_text: str
    due: datetime | None
    warn: datetime | None
    deadline_text: str
    second_line: str | None
    urgent: str | None  # the priority's words, for an urgent case
    language: str = ""  # "ru", "kk", "en", "other"; "" when not detected
    language_label: str = ""


@dataclass(frozen=True)
class TierCount:
    """A tier's counters."""

    tier: str
    label: str
    open: int
    warning: int
    overdue: int


@dataclass(frozen=True)
class Board:
    """What the wallboard shows at a moment."""

    now: datetime
    rows: list[Row]
    more: int
    tiers: list[TierCount]
    met_share: float | None
    met: int
    missed: int
    pending: int


def _platform(platform: str, deps: Deps) -> str:
    key = f"platform.{platform}"
    return deps.catalog(key) if deps.catalog.has(key) else platform


def _row(case: Case, first: Mention | None, deps: Deps, now: datetime) -> Row:
    assert case.id is not None
    text = deps.catalog
    policy = deps.team.sla.for_tier(case.tier)
    line = sla_line(case, policy, now=now, zone=deps.team.zone, catalog=text)
    author = (first.author.handle or first.author.name) if first else None
    team = deps.team.second_line_team(case.handoff_team) if case.handoff_team else None
    return Row(
        case_id=case.id, tier=case.tier.value, platform=_platform(case.platform, deps),
        brand=case.brand, author=author or text("card.author_unknown"),
        words=shared_excerpt(first.text if first else None, WORDS),
        holder=display_name(case.claimed_by, deps.team, text) if case.claimed_by else "",
        state=text(f"state.{case.state.value}"), level=line.level.value, sla_text=line.text,
        due=line.deadline_at, warn=warning_from(case, policy), deadline_text=line.deadline_text,
        second_line=(team.title if team else case.handoff_team) if case.handoff_team else None,
        urgent=text("priority.urgent") if case.priority is Priority.URGENT else None,
        language=case.language or "",
        language_label=text(f"language.{case.language}") if case.language else "",
    )


async def board(deps: Deps) -> Board:
    """Read the open queue and today's SLA share."""
    now = deps.clock.now()
    async with deps.reads() as uow:
        read = await uow.console.board(
            rows=ROWS, period=parse_period("today", now=now, zone=deps.team.zone), now=now)
    figures = read.figures
    if figures.to_fold:
        async with deps.uow() as uow:
            await uow.console.fold_counts()
            await uow.commit()
    rows = [_row(case, first, deps, now) for case, first in read.head]
    tiers = []
    for tier in Tier:
        mine = [r for r in rows if r.tier == tier.value]
        minutes = deps.team.sla.for_tier(tier).first_response_minutes
        tiers.append(TierCount(
            tier=tier.value, label=deps.catalog(f"report.tier_{tier.value}", minutes=minutes),
            open=figures.open.get(tier, 0),
            warning=sum(r.level == "warning" for r in mine),
            overdue=sum(r.level == "overdue" for r in mine),
        ))
    today = figures.share
    more = sum(figures.open.values()) - len(rows)
    return Board(now=now, rows=rows, more=max(0, more), tiers=tiers,
                 met_share=today.met_share, met=today.met, missed=today.missed,
                 pending=today.pending)


def payload(board: Board, pages: Pages, incidents: Sequence[Banner] = ()) -> str:
    """Return the board as one server-sent event's data: the rendered rows and counters,
    and the open incidents' banners."""
    return json.dumps({
        "now": board.now.isoformat(),
        "rows": pages.html("_rows.html", board=board),
        "counters": pages.html("_counters.html", board=board),
        "incidents": pages.html("_incidents.html", incidents=incidents),
    })


class LiveBoard:
    """Pushes the board to connected browsers when the queue changes (in any process)."""

    def __init__(self, deps: Deps, pages: Pages) -> None:
        self._deps = deps
        self._pages = pages
        self._listeners: set[Stream] = set()
        self._joined: set[Stream] = set()  # still waiting for a board
        self._someone = asyncio.Event()
        self._wake = asyncio.Event()
        self._closed = False

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[Stream]:
        """Receive the board at once, then each change (None: the server is stopping),
        while inside."""
        queue: Stream = asyncio.Queue(maxsize=1)
        if self._closed:
            queue.put_nowait(None)
        self._listeners.add(queue)
        self._joined.add(queue)
        self._someone.set()
        self._wake.set()
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
            self._joined.discard(queue)
            if not self._listeners:
                self._someone.clear()

    def close(self) -> None:
        """Tell every listener that the server is stopping."""
        self._closed = True
        for queue in self._listeners:
            put_latest(queue, None)

    async def _mark(self) -> QueueMark:
        async with self._deps.reads() as uow:
            return await uow.console.queue_mark()

    async def run(self) -> None:
        """Watch the queue while anyone listens; push each change, and the board to each
        newcomer."""
        last: QueueMark | None = None
        pushed_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            background.stop_if_asked()
            if not self._listeners:
                last = None
                await self._someone.wait()
            self._wake.clear()
            joined, self._joined = self._joined, set()
            try:
                mark = await self._mark()
                changed = mark != last or loop.time() - pushed_at >= REFRESH_SECONDS
                targets = set(self._listeners) if changed else joined & self._listeners
                if targets:
                    data = payload(await board(self._deps), self._pages,
                                   await banners(self._deps))
                    for queue in targets:
                        put_latest(queue, data)
                if changed:
                    last, pushed_at = mark, loop.time()
            except Exception:
                background.stop_if_asked()
                self._joined |= joined & self._listeners
                log.exception("the wallboard could not read the queue; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
