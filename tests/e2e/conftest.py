"""The whole app on its real HTTP server, on the storage back end under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from socialcare.deps import Deps
from socialcare.main import build_app, runtime
from socialcare.settings import Settings
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url, reset_database

SECRET = "ingest-secret-for-tests"


@pytest.fixture
async def app_deps(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Deps]:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(
        database_url=url,
        redis_url=TEST_REDIS_URL,
        config_file=ROOT / "config.example.toml",
        ingest_webhook_secret=SECRET,
    )
    async with runtime(settings, clock=clock) as deps:
        await deps.redis.flushdb()
        yield deps


@pytest.fixture
async def http(app_deps: Deps) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(app_deps, with_timers=False))) as client:
        yield client
