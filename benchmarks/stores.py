"""Where the benchmarks keep their data: a PostgreSQL database and a Redis of their own.

BENCH_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test_bench) is
wiped and migrated again before each measurement; BENCH_REDIS_URL (default
redis://127.0.0.1:6379/14) is flushed. Never point them at data you want to keep.
SQLite runs get a fresh file in a temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from socialcare.storage import redis as redis_store
from socialcare.storage.database import create_engine, upgrade

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def postgres_url() -> str:
    """Return the benchmark's PostgreSQL URL."""
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def second_postgres_url() -> str:
    """Return a second benchmark database beside the first (its name + "_b"), for a
    benchmark that keeps two pipelines' data apart at once."""
    url = make_url(postgres_url())
    return url.set(database=f"{url.database}_b").render_as_string(hide_password=False)


def redis_url() -> str:
    """Return the benchmark's Redis URL."""
    return os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)


def sqlite_url(directory: Path) -> str:
    """Return the URL of a fresh SQLite file in `directory`."""
    path = directory / "socialcare.db"
    for leftover in directory.glob("socialcare.db*"):
        leftover.unlink()
    return f"sqlite+aiosqlite:///{path}"


async def ensure_database(url: str) -> None:
    """Create a PostgreSQL database if it does not exist."""
    parsed = make_url(url)
    server = await asyncpg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                                   password=parsed.password, database="postgres")
    try:
        exists = await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                       parsed.database)
        if not exists:
            await server.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await server.close()


async def reset_database(url: str) -> None:
    """Bring a database (created if missing) to an empty, fully migrated state."""
    if make_url(url).get_backend_name() == "postgresql":
        await ensure_database(url)
    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
    finally:
        await engine.dispose()


async def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database (leases, rate budgets, queues)."""
    redis = redis_store.connect(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
