"""What the handlers are given: the team, the clock, storage, telemetry.

Built only by the composition root (`socialcare.main`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.adapters.telemetry import Telemetry
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import Clock
from socialcare.bot.team import Team
from socialcare.settings import Settings
from socialcare.storage.database import SqlUnitOfWork


@dataclass(frozen=True)
class Deps:
    """The running app's parts, shared by every handler."""

    settings: Settings
    team: Team
    clock: Clock
    engine: AsyncEngine
    redis: Redis[Any]
    pipeline: Pipeline
    telemetry: Telemetry

    def uow(self) -> SqlUnitOfWork:
        """Return a new unit of work (one per request or command)."""
        return SqlUnitOfWork(self.engine)
