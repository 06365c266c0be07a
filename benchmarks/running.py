"""socialcare as `socialcare run` runs it, for the benchmarks: the composition root's
`runtime` and `build_app` on a real HTTP port, pointed at the messengers' fakes
(`benchmarks.fake_chat`) through the `*_API_URL` settings.

Imports no fake: the memory benchmark's child process runs this alone.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from socialcare.adapters.collectors.signature import HEADER, sign
from socialcare.main import App, build_app, runtime, settle_memory
from socialcare.roles import ALL_ROLES, Role
from socialcare.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.example.toml"
INGEST_SECRET = "benchmark-ingest-secret"
TELEGRAM_SECRET = "benchmark-telegram-secret"
# The team's channels and an agent of config.example.toml.
SLACK_CHANNEL = "C0123456789"
TELEGRAM_CHAT = -1001234567890
AGENT_SLACK = "U0AGENT001"


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Endpoints:
    """Where the messengers' fakes listen and the credentials they take (None: off)."""

    slack_url: str | None = None
    slack_token: str | None = None
    slack_signing_secret: str | None = None
    telegram_url: str | None = None
    telegram_token: str | None = None


def settings(database_url: str, redis_url: str | None, *, port: int,
             messengers: Endpoints = Endpoints()) -> Settings:
    """Return the settings of a socialcare on `port` talking to the given messengers."""
    values: dict[str, Any] = {
        "database_url": database_url, "redis_url": redis_url, "config_file": CONFIG,
        "http_port": port, "ingest_webhook_secret": INGEST_SECRET,
        "slack_bot_token": None, "slack_signing_secret": None, "slack_app_token": None,
        "telegram_bot_token": None, "telegram_webhook_url": None,
        "telegram_webhook_secret": None, "handoff_webhook_secret": None,
    }
    if messengers.slack_url is not None:
        values |= {"slack_bot_token": messengers.slack_token,
                   "slack_api_url": messengers.slack_url,
                   "slack_signing_secret": messengers.slack_signing_secret}
    if messengers.telegram_url is not None:
        values |= {"telegram_bot_token": messengers.telegram_token,
                   "telegram_api_url": messengers.telegram_url,
                   "telegram_webhook_url": f"http://127.0.0.1:{port}/telegram/webhook",
                   "telegram_webhook_secret": TELEGRAM_SECRET}
    return Settings(_env_file=None, **values)


@dataclass(frozen=True)
class Running:
    """A running socialcare: its parts and its HTTP address."""

    app: App
    url: str


@asynccontextmanager
async def serving(config: Settings, *, with_timers: bool = True,
                  roles: frozenset[Role] = ALL_ROLES) -> AsyncIterator[Running]:
    """Run socialcare (HTTP server, scheduler, collectors, workers, cards — or the
    given roles) until exit."""
    async with runtime(config, roles=roles) as app:
        runner = web.AppRunner(build_app(app, with_timers=with_timers), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", config.http_port)
            await site.start()
            settle_memory()  # as `socialcare run` does once it listens
            yield Running(app, f"http://127.0.0.1:{config.http_port}")
        finally:
            await runner.cleanup()


def signed(items: Sequence[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers of `POST /ingest` for these mentions."""
    body = json.dumps(list(items)).encode()
    return body, {HEADER: sign(body, INGEST_SECRET), "Content-Type": "application/json"}


async def post_ingest(session: aiohttp.ClientSession, base_url: str,
                      items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST mentions to `/ingest` and return each one's outcome."""
    body, headers = signed(items)
    async with session.post(f"{base_url}/ingest", data=body, headers=headers) as response:
        answer = await response.json()
        if response.status not in (200, 202):
            raise RuntimeError(f"/ingest answered {response.status}: {answer}")
        return list(answer["results"])
