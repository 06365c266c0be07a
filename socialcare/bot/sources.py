"""Sources: where mentions come from, polled or pushed, and how each one is doing.

A polled source (an RSS feed, VK, YouTube, X) is asked "what is new since this
cursor?" every so often; a pushed source (a listening platform's webhook, Meta, the
Telegram groups the bot is in) delivers by itself. Either way socialcare keeps, per
source, its cursor and its health — last success, last error, items found, lag —
and tells the team once when a source starts failing or goes silent, and once when
it recovers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from socialcare.bot.catalog import Catalog
from socialcare.bot.model import RawMention
from socialcare.bot.report_text import duration
from socialcare.bot.team import Source

# Consecutive failed polls before the team is told a source is failing.
FAILING_AFTER = 3
# Longest wait between polls of a failing source.
BACKOFF_MAX = timedelta(hours=1)


class Alert(StrEnum):
    """What the team was last told about a source."""

    OK = "ok"
    FAILING = "failing"
    SILENT = "silent"


@dataclass
class SourceState:
    """A source's cursor and health, kept in the database."""

    name: str
    cursor: dict[str, Any] = field(default_factory=dict)
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    items_found: int = 0
    last_item_at: datetime | None = None
    lag_seconds: float | None = None
    next_poll_at: datetime | None = None
    alert: Alert = Alert.OK
    note: str | None = None  # e.g. "quota used up until 09:00"
    version: int = 0


@dataclass(frozen=True)
class Polled:
    """What one poll found, the cursor to poll from next, and whether to slow down."""

    mentions: list[RawMention]
    cursor: dict[str, Any]
    retry_after: float | None = None  # the source asked for a pause (rate limit, quota)
    note: str | None = None


class SourceUnavailable(Exception):
    """A poll failed; the message says why. `retry_after` when the source said when."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 cursor: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # The cursor to poll from next despite the failure (a feed keeps the validators
        # of a body it could not read, so that, unchanged, it is not fetched again).
        self.cursor = cursor


def record_success(state: SourceState, found: list[RawMention], *, now: datetime,
                   note: str | None = None) -> None:
    """Note a successful poll or delivery and what it found."""
    state.last_success_at = now
    state.failures = 0
    state.note = note
    record_items(state, found, now=now)


def record_items(state: SourceState, found: list[RawMention], *, now: datetime) -> None:
    """Count what a source brought and how late; its health is its polls' to tell."""
    state.items_found += len(found)
    if found:
        newest = max(m.published_at for m in found)
        state.last_item_at = max(state.last_item_at or newest, newest)
        state.lag_seconds = max(0.0, (now - newest).total_seconds())


@dataclass(frozen=True)
class Delivery:
    """What one delivery of a pushed source adds to its health: like a successful poll,
    it counts its items, moves the last item time on, and clears the failures — unless
    the source is polled as well, whose polls alone tell its health (`items_only`)."""

    at: datetime
    count: int
    newest: datetime | None = None  # the latest publication time among the items
    items_only: bool = False

    @classmethod
    def of(cls, found: Sequence[RawMention], *, now: datetime,
           items_only: bool = False) -> Delivery:
        """Return the delivery of these mentions, received now."""
        return cls(at=now, count=len(found),
                   newest=max((m.published_at for m in found), default=None),
                   items_only=items_only)

    @property
    def lag_seconds(self) -> float | None:
        """How long after its newest item the delivery came."""
        return None if self.newest is None else max(0.0, (self.at - self.newest).total_seconds())


def record_failure(state: SourceState, error: str, *, now: datetime) -> None:
    """Note a failed poll."""
    state.failures += 1
    state.last_error_at = now
    state.last_error = error[:500]


def next_poll(source: Source, state: SourceState, *, now: datetime,
              retry_after: float | None = None) -> datetime:
    """Return when to poll again: the source's interval, longer if it asked for a pause,
    doubling (up to an hour) while it keeps failing."""
    wait = timedelta(seconds=source.poll_seconds)
    if state.failures:
        wait = min(wait * 2 ** min(state.failures - 1, 10), max(BACKOFF_MAX, wait))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return now + wait


def assess(source: Source, state: SourceState, *, now: datetime, polled: bool) -> Alert:
    """Return how the source should be described now: failing, silent, or fine."""
    if polled and state.failures >= FAILING_AFTER:
        return Alert.FAILING
    since = state.last_item_at or state.last_success_at
    if source.silent_minutes is not None and since is not None \
            and now - since > timedelta(minutes=source.silent_minutes):
        return Alert.SILENT
    return Alert.OK


def changed_alert(source: Source, state: SourceState, *, now: datetime,
                  polled: bool) -> tuple[Alert, Alert] | None:
    """Move the state's alert to what it should be; return (was, is) if it changed."""
    wanted = assess(source, state, now=now, polled=polled)
    if wanted is state.alert:
        return None
    was, state.alert = state.alert, wanted
    return was, wanted


def table(sources: Sequence[Source], states: Mapping[str, SourceState], *, now: datetime,
          catalog: Catalog, polled: Callable[[Source], bool],
          unknown: Mapping[str, tuple[int, datetime]] | None = None) -> str:
    """The `/sources` table: one line per source, how it is doing and since when; then
    the queued mentions of sources a worker's config does not know (`unknown`: how
    many of each source, since when), which wait for a worker that knows them."""
    lines = [catalog("sources.title", count=len(sources))]
    for source in sources:
        state = states.get(source.name) or SourceState(source.name)
        status = assess(source, state, now=now, polled=polled(source))
        ago = _ago(now, catalog)
        if state.last_success_at is None and state.failures == 0:
            head = catalog("sources.never", name=source.name, kind=source.kind,
                           tier=source.tier.value)
        else:
            head = catalog(f"sources.{status.value}", name=source.name, kind=source.kind,
                           tier=source.tier.value)
        parts = [head]
        if state.last_success_at is not None:
            parts.append(catalog("sources.last_ok", ago=ago(state.last_success_at)))
        parts.append(catalog("sources.items", count=state.items_found))
        if state.lag_seconds is not None:
            parts.append(catalog("sources.lag", lag=duration(state.lag_seconds, catalog)))
        if state.failures:
            parts.append(catalog("sources.failures", count=state.failures))
        if state.last_error_at is not None and (state.failures or status is not Alert.OK):
            parts.append(catalog("sources.error", ago=ago(state.last_error_at),
                                 error=state.last_error or "?"))
        if state.note:
            parts.append(state.note)
        if polled(source) and state.next_poll_at is not None and state.next_poll_at > now:
            parts.append(catalog("sources.next", wait=duration(
                (state.next_poll_at - now).total_seconds(), catalog)))
        lines.append(" · ".join(parts))
    for name, (count, since) in (unknown or {}).items():
        lines.append(catalog("sources.unknown_source", name=name, count=count,
                             since=duration(max(0.0, (now - since).total_seconds()), catalog)))
    return "\n".join(lines)


def alert_text(source: Source, change: tuple[Alert, Alert], state: SourceState, *,
               catalog: Catalog) -> str:
    """What the team channel is told when a source starts failing, goes silent or recovers."""
    _, now_is = change
    if now_is is Alert.FAILING:
        return catalog("sources.alert_failing", name=source.name, failures=state.failures,
                       error=state.last_error or "?")
    if now_is is Alert.SILENT:
        return catalog("sources.alert_silent", name=source.name,
                       minutes=source.silent_minutes or 0)
    return catalog("sources.alert_recovered", name=source.name)


def _ago(now: datetime, catalog: Catalog) -> Callable[[datetime], str]:
    return lambda at: duration(max(0.0, (now - at).total_seconds()), catalog)
