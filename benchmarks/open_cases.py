"""A queue of open cases, stored through the real pipeline: case, mention, created
event, a card per channel and the case's facts, as `/ingest` leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, inspect, select

from benchmarks import mentions, running
from socialcare.adapters.clock import SystemClock
from socialcare.bot.model import OPEN_STATES
from socialcare.bot.pipeline import Pipeline
from socialcare.settings import load_team
from socialcare.storage.database import SqlUnitOfWork, create_engine
from socialcare.storage.schema import cases

SEED_BATCH = 500


async def count_open(url: str) -> int:
    """Count the open cases in the database (0 if it has no tables yet)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("cases")):
                return 0
            query = select(func.count()).select_from(cases).where(
                cases.c.state.in_([s.value for s in OPEN_STATES]))
            return int((await conn.execute(query)).scalar() or 0)
    finally:
        await engine.dispose()


async def seed(url: str, count: int, *, published_ago: timedelta = timedelta(minutes=1)) -> None:
    """Ingest `count` mentions (a quarter from forums) into a migrated database; each
    becomes an open case."""
    engine = create_engine(url)
    pipeline = Pipeline(load_team(running.CONFIG), clock=SystemClock())
    published = datetime.now(UTC) - published_ago
    items = [mentions.mention(n, published=published, prefix="open",
                              source=mentions.FORUM_SOURCE if n % 4 == 0
                              else mentions.MAIN_SOURCE) for n in range(count)]
    try:
        for batch in mentions.batches(items, SEED_BATCH):
            await pipeline.ingest(mentions.raw_mentions(batch), uow=SqlUnitOfWork(engine))
    finally:
        await engine.dispose()
