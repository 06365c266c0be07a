"""The protocols through which the domain reaches the outside world."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from socialcare.bot.model import Case, Event, Mention, Tier


class Clock(Protocol):
    """Tells the time; injected so that tests can move it."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class CaseRepository(Protocol):
    """Stores cases; every save is conditional on the version the case was read at."""

    async def get(self, case_id: int) -> Case:
        """Return the case, or raise CaseNotFound."""
        ...

    async def get_many(self, case_ids: Collection[int]) -> dict[int, Case]:
        """Return the cases that exist among these ids."""
        ...

    async def add(self, cases: Sequence[Case]) -> None:
        """Store new cases and set their ids."""
        ...

    async def save(self, case: Case) -> None:
        """Store a changed case if nobody changed it since it was read, else raise
        ConcurrentUpdate; bump its version."""
        ...

    async def list_open(self, *, limit: int = 500) -> list[Case]:
        """Return open cases, earliest response deadline first."""
        ...

    async def count_open(self) -> dict[Tier, int]:
        """Count open cases per tier."""
        ...

    async def list_due(self, now: datetime, *, limit: int) -> list[Case]:
        """Return cases whose next SLA alert is due, earliest first."""
        ...


class MentionRepository(Protocol):
    """Stores the messages of cases; (source, external id) is unique."""

    async def reserve(self, keys: Collection[tuple[str, str]]) -> None:
        """Hold these (source, external id) keys until the transaction ends, so that
        another writer of the same mention waits and then sees it stored."""
        ...

    async def existing(self, keys: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Return which of these (source, external id) pairs are already stored."""
        ...

    async def threads(self, source: str, keys: Collection[str]) -> Mapping[str, tuple[int, str]]:
        """Map thread ids and external ids of stored mentions of a source to
        (case id, thread key)."""
        ...

    async def add(self, mentions: Sequence[Mention]) -> None:
        """Store mentions and set their ids."""
        ...

    async def for_case(self, case_id: int) -> list[Mention]:
        """Return a case's mentions, oldest first."""
        ...

    async def first_of(self, case_ids: Collection[int]) -> dict[int, Mention]:
        """Return the first mention of each of these cases."""
        ...


class EventRepository(Protocol):
    """Appends events; never changes one."""

    async def add(self, events: Iterable[Event]) -> None:
        """Append events."""
        ...

    async def for_case(self, case_id: int) -> list[Event]:
        """Return a case's events in the order they happened."""
        ...

    async def for_cases(self, case_ids: Collection[int]) -> dict[int, list[Event]]:
        """Return the events of several cases, each list in order."""
        ...


class UnitOfWork(Protocol):
    """One transaction over the repositories; `async with uow:` begins it.

    Leaving the block without `commit()` rolls back. The same unit of work may be
    entered again afterwards, which begins a new transaction.
    """

    cases: CaseRepository
    mentions: MentionRepository
    events: EventRepository

    async def __aenter__(self) -> Self:
        """Begin a transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """End the transaction, rolling back what was not committed."""
        ...

    async def commit(self) -> None:
        """Commit the transaction."""
        ...
