"""Shared fixtures: the team, a clock the test moves, and the storage back end.

The back end is picked by the environment: TEST_DATABASE_URL (e.g.
postgresql+asyncpg://postgres@127.0.0.1:5432/test) and TEST_REDIS_URL (e.g.
redis://127.0.0.1:6379/15). Unset, the embedded default runs: a SQLite file per test
and the in-process Redis stand-in. When they are set and the servers cannot be
reached, the tests fail — they never skip.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.bot.model import Tier
from socialcare.bot.sla import SlaConfig, SlaPolicy
from socialcare.bot.team import Brand, Channel, Person, Role, Source, Team
from socialcare.storage import redis as redis_store
from socialcare.storage.database import SqlUnitOfWork, create_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def write_config(path: Path, text: str) -> Path:
    """Write a config (config.example.toml, edited) with the example's pictograms next
    to it, where its saved replies' pictures are looked for when it loads."""
    path.write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "pictures", path.parent / "pictures", dirs_exist_ok=True)
    return path


@dataclass
class FakeClock:
    """A clock that stands still until the test moves it."""

    current: datetime = T0

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@dataclass
class FlowingClock(FakeClock):
    """A clock that runs at real speed from T0, and that the test can move forward.

    For tests of the running app, whose rate limits wait in real time."""

    started: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.current + timedelta(seconds=time.monotonic() - self.started)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flowing_clock() -> FlowingClock:
    return FlowingClock()


def make_team(**overrides: Any) -> Team:
    """Return a small team: two brands, a main and an extra source, four people."""
    values: dict[str, Any] = {
        "timezone": "Asia/Almaty",
        "brands": (
            Brand(
                name="Kcell",
                keywords=("Kcell", "Кселл"),
                exclusions=("Kcell Arena",),
                accounts={"instagram": ("@kcell_kz",), "vk": ("kcell",)},
            ),
            Brand(name="activ", keywords=("activ", "Актив Казахстан")),
        ),
        "sources": (
            Source(name="webhook", kind="webhook", platform="instagram", tier=Tier.MAIN),
            Source(name="forums", kind="webhook", platform="forum", tier=Tier.EXTRA),
        ),
        "sla": SlaConfig(
            main=SlaPolicy(first_response_minutes=15, repeat_minutes=5),
            extra=SlaPolicy(first_response_minutes=60, resolution_minutes=240),
        ),
        "urgent_keywords": ("суд", "lawsuit"),
        "channels": (Channel(messenger="slack", id="C0CARE"),),
        "people": (
            Person(id="aigerim", name="Aigerim", role=Role.AGENT, slack="U0AIGERIM", telegram=101),
            Person(id="daniyar", name="Daniyar", role=Role.AGENT, telegram=102),
            Person(id="saule", name="Saule", role=Role.LEAD, slack="U0SAULE"),
            Person(id="nurlan", name="Nurlan", role=Role.DIRECTOR, slack="U0NURLAN",
                   areas=("network",)),
        ),
    }
    values.update(overrides)
    return Team(**values)


@pytest.fixture
def team() -> Team:
    return make_team()


@dataclass
class Storage:
    """The back end under test: a migrated database and a Redis."""

    url: str
    engine: AsyncEngine
    redis: Redis[Any]
    engines: list[AsyncEngine] = field(default_factory=list)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def new_engine(self) -> AsyncEngine:
        """Return another engine on the same database, as a second process would have."""
        engine = create_engine(self.url)
        self.engines.append(engine)
        return engine

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")


async def reset_database(url: str) -> None:
    """Bring a database to an empty, fully migrated state."""
    engine = create_engine(url)
    try:
        if url.startswith("postgresql"):
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
    finally:
        await engine.dispose()


def database_url(tmp_path: Path) -> str:
    return TEST_DATABASE_URL or f"sqlite+aiosqlite:///{tmp_path / 'socialcare.db'}"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    url = database_url(tmp_path)
    await reset_database(url)
    engine = create_engine(url)
    redis = redis_store.connect(TEST_REDIS_URL)
    await redis.flushdb()
    store = Storage(url=url, engine=engine, redis=redis)
    try:
        yield store
    finally:
        await redis.aclose()
        for other in store.engines:
            await other.dispose()
        await engine.dispose()
