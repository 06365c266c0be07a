"""Scheduled jobs' runs, one row per job and period: the primary key makes each run once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from socialcare.storage.schema import job_runs


class SqlJobRepository:
    """Runs of scheduled jobs in the `job_runs` table."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(self, job: str, period: str, *, at: datetime) -> bool:
        """Take the run of `job` for `period`; False if it ran (or runs) elsewhere."""
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        result = await self._conn.execute(
            dialect.insert(job_runs)
            .values(job=job, period=period, claimed_at=at)
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount == 1)

    async def release(self, job: str, period: str) -> None:
        """Give a run back after it failed."""
        await self._conn.execute(
            delete(job_runs).where(job_runs.c.job == job, job_runs.c.period == period)
        )
