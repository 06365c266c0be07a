"""What the handlers are given: the team, the clock, storage, telemetry.

Built only by the composition root (`socialcare.main`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.adapters.collectors.kinds import Collectors
from socialcare.adapters.telemetry import Telemetry
from socialcare.bot.announcements.ports import Mailer
from socialcare.bot.catalog import Catalog
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import Clock, Messenger, Publisher, WebhookSender
from socialcare.bot.team import Team
from socialcare.foreground import Foreground
from socialcare.roles import ALL_ROLES, Role
from socialcare.settings import Settings
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.queue import IngestQueue

__all__ = ["ALL_ROLES", "PASSWORD_CHECKS_AT_ONCE", "Deps", "Role"]

PASSWORD_CHECKS_AT_ONCE = 2


@dataclass(frozen=True)
class Deps:
    """The running app's parts, shared by every handler."""

    settings: Settings
    team: Team
    catalog: Catalog
    clock: Clock
    engine: AsyncEngine
    redis: Redis[Any]
    pipeline: Pipeline
    telemetry: Telemetry
    messengers: Mapping[str, Messenger] = field(default_factory=dict)
    publishers: Mapping[str, Publisher] = field(default_factory=dict)
    webhooks: WebhookSender | None = None
    # Announcements to e-mail audiences and to audiences' webhooks.
    mailer: Mailer | None = None
    announcement_webhooks: WebhookSender | None = None
    collectors: Collectors = field(default_factory=Collectors)
    roles: frozenset[Role] = ALL_ROLES
    # Where a process without the workers role hands its mentions over.
    queue: IngestQueue | None = None
    # Set to wake the dispatcher when a case changed in this process.
    card_changes: asyncio.Event = field(default_factory=asyncio.Event)
    # Console password checks hashing at once (16 MiB and tens of ms of a core each);
    # the others wait their turn.
    password_checks: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE))
    # The requests in flight (Slack's) that the work no one waits on gives way to.
    foreground: Foreground = field(default_factory=Foreground)

    def wake(self) -> None:
        """Tell the dispatcher that cards are out of step."""
        self.card_changes.set()

    @property
    def hands_over(self) -> bool:
        """Whether mentions this process collects go to other processes' workers."""
        return Role.WORKERS not in self.roles and self.queue is not None

    def uow(self) -> SqlUnitOfWork:
        """Return a new unit of work (one per request or command)."""
        return SqlUnitOfWork(self.engine)

    def reads(self) -> SqlUnitOfWork:
        """Return a unit of work that only reads (never committed): on PostgreSQL its
        statements go without BEGIN and COMMIT, on SQLite it takes no write lock."""
        return SqlUnitOfWork(self.engine, reads_only=True)

    def background_uow(self) -> SqlUnitOfWork:
        """Return a unit of work for work no one waits on (the cards' syncing): it
        begins once the requests in flight have their answers."""
        return SqlUnitOfWork(self.engine, give_way=self.foreground.give_way)
