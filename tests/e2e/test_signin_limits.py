"""Password sign-in is limited per client address as well as per person: a stranger's
wrong guesses hold back the stranger, never the person; one address cannot try name
after name; many addresses together slow a person's checks down but cannot lock them
out. Behind a trusted proxy the client is the one X-Forwarded-For names."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from socialcare.console import access
from socialcare.deps import Deps
from socialcare.main import build_app, runtime
from socialcare.settings import Settings
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url, reset_database
from tests.e2e.test_console import PASSWORD, Browser, browser, csrf_of

PERSON, STRANGER = "198.51.100.7", "203.0.113.66"


@dataclass
class Proxied:
    """The console behind a reverse proxy on this host (trusted), and its parts."""

    http: TestClient
    deps: Deps

    @property
    def base(self) -> str:
        return str(self.http.make_url("")).rstrip("/")


@pytest.fixture
async def behind_proxy(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Proxied]:
    """Serve the console as if behind a reverse proxy on this host."""
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml",
                        ingest_webhook_secret="secret", trusted_proxies="127.0.0.1, ::1")
    async with runtime(settings, clock=clock) as app:
        await app.deps.redis.flushdb()
        await access.set_password(app.deps, "aigerim", PASSWORD)
        async with TestClient(TestServer(build_app(app, with_timers=False))) as client:
            yield Proxied(client, app.deps)


def _base(http: TestClient) -> str:
    return str(http.make_url("")).rstrip("/")


async def _signin_csrf(visitor: Browser) -> str:
    _, page, _ = await visitor.get("/signin")
    return csrf_of(page)


def _from(address: str) -> dict[str, Any]:
    """Headers of a request the proxy passes on for a client at `address`."""
    return {"headers": {"Accept": "text/html", "X-Forwarded-For": address}}


async def test_a_stranger_guessing_a_persons_password_locks_out_only_himself(
    behind_proxy: Proxied
) -> None:
    async with browser(behind_proxy.base) as stranger, browser(behind_proxy.base) as person:
        guesses = [(await stranger.post("/signin", {
            "csrf": await _signin_csrf(stranger), "person": "aigerim", "password": "guess"},
            **_from(f"10.9.9.{n}, {STRANGER}")))[0] for n in range(access.MAX_FAILURES + 2)]
        refused = await stranger.post("/signin", {
            "csrf": await _signin_csrf(stranger), "person": "aigerim", "password": PASSWORD},
            **_from(STRANGER))
        signed = await person.post("/signin", {
            "csrf": await _signin_csrf(person), "person": "aigerim", "password": PASSWORD},
            **_from(PERSON))

    assert guesses == [401] * len(guesses)
    assert refused[0] == 401 and "Too many wrong passwords from here" in refused[1]
    assert signed[0] == 303


async def test_one_address_trying_name_after_name_is_held_back(
    behind_proxy: Proxied
) -> None:
    deps = behind_proxy.deps
    for n in range(access.MAX_CLIENT_FAILURES):
        assert await access.sign_in_with_password(
            deps, f"nobody{n // 2}", "guess", client=STRANGER) is None
    with pytest.raises(access.TooManyAttempts):
        await access.sign_in_with_password(deps, "someone-new", "guess",
                                           client=STRANGER)
    with pytest.raises(access.TooManyAttempts):
        await access.sign_in_with_password(deps, "aigerim", PASSWORD,
                                           client=STRANGER)

    assert await access.sign_in_with_password(deps, "aigerim", PASSWORD,
                                              client=PERSON) is not None


async def test_guesses_from_many_addresses_slow_a_person_down_but_never_lock_them_out(
    behind_proxy: Proxied
) -> None:
    deps = behind_proxy.deps
    for n in range(access.SLOW_DOWN_AFTER):
        assert await access.sign_in_with_password(deps, "aigerim", "guess",
                                                  client=f"10.0.0.{n}") is None
    started = time.monotonic()
    signed = await access.sign_in_with_password(deps, "aigerim", PASSWORD,
                                                client=PERSON)
    took = time.monotonic() - started

    assert signed is not None
    assert took >= access.SLOW_DOWN_SECONDS


async def test_without_a_trusted_proxy_x_forwarded_for_is_not_believed(
    http: TestClient, app_deps: Deps
) -> None:
    await access.set_password(app_deps, "aigerim", PASSWORD)
    async with browser(_base(http)) as stranger:
        answers = []
        for n in range(access.MAX_FAILURES + 1):
            answers.append(await stranger.post("/signin", {
                "csrf": await _signin_csrf(stranger), "person": "aigerim",
                "password": "guess"}, **_from(f"10.0.0.{n}")))

    assert [status for status, _, _ in answers] == [401] * len(answers)
    assert "Too many wrong passwords from here" in answers[-1][1]
    assert "Too many" not in answers[-2][1]


