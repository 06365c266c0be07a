"""A process does the part of the work its roles name, and answers the rest with 404."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from socialcare.deps import Role
from socialcare.main import build_app, runtime
from socialcare.settings import Settings
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url, reset_database
from tests.e2e.test_cli import SCRIPT, _env


def _routes(app: web.Application) -> set[str]:
    return {resource.canonical for resource in app.router.resources()}


@pytest.mark.parametrize(("roles", "has", "lacks"), [
    ({Role.COLLECTORS}, {"/ingest", "/ingest/{name}", "/meta/{name}"},
     {"/slack/events", "/handoff/{team}"}),
    ({Role.MESSENGERS}, {"/slack/events", "/handoff/{team}"}, {"/ingest", "/meta/{name}"}),
    ({Role.WORKERS}, set(), {"/ingest", "/slack/events"}),
    ({Role.SCHEDULER}, set(), {"/ingest", "/slack/events"}),
    (set(Role), {"/ingest", "/slack/events", "/handoff/{team}"}, set()),
])
async def test_each_role_serves_its_own_routes(
    tmp_path: Path, clock: FakeClock, roles: set[Role], has: set[str], lacks: set[str]
) -> None:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml",
                        ingest_webhook_secret="secret", slack_bot_token="xoxb-1",
                        slack_signing_secret="signing", slack_api_url="http://127.0.0.1:9/api/")
    async with runtime(settings, clock=clock, roles=frozenset(roles)) as app:
        routes = _routes(build_app(app))

    assert {"/healthz", "/metrics"} <= routes
    assert has <= routes
    assert not lacks & routes


def test_roles_without_redis_are_refused_with_the_reason(tmp_path: Path) -> None:
    env = {k: v for k, v in _env(tmp_path).items() if k != "REDIS_URL"}
    result = subprocess.run([SCRIPT, "run", "--role", "workers"], env=env,
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "--role needs REDIS_URL" in result.stderr


def test_an_unknown_role_gets_a_usage_line() -> None:
    result = subprocess.run([SCRIPT, "run", "--role", "janitor"], capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 2
    assert "invalid choice: 'janitor'" in result.stderr
    assert "usage:" in result.stderr
