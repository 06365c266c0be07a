"""The whole app on its real HTTP server, on the storage back end under test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from socialcare.deps import Deps
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url, reset_database

SECRET = "ingest-secret-for-tests"


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(
        database_url=url,
        redis_url=TEST_REDIS_URL,
        config_file=ROOT / "config.example.toml",
        ingest_webhook_secret=SECRET,
    )
    async with runtime(settings, clock=clock) as built:
        await built.deps.redis.flushdb()
        yield built


@pytest.fixture
def app_deps(app: App) -> Deps:
    return app.deps


@pytest.fixture
async def http(app: App) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(build_app(app, with_timers=False))) as client:
        yield client
