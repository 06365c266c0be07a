"""`socialcare demo`: the bundled team and sample on a fresh embedded database, the
simulated shift working the cases through the domain, no network, a clean stop.

The demo always runs on SQLite and the in-process Redis (it reads no environment),
whatever TEST_DATABASE_URL says."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from socialcare.demo import sample, show
from socialcare.main import demo
from socialcare.settings import load_team

SCRIPT = str(Path(sys.executable).parent / "socialcare")
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
KAZAKH = re.compile("[әғқңөұүһі]", re.IGNORECASE)
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
# How long the in-process demo may take to reach each point before it counts as stuck.
# Not a speed target (speed is for the benchmarks): on a busy machine its start alone
# (migrations, ten password hashes for the welcome) has taken over 25 s.
STUCK_AFTER = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _language(text: str) -> str:
    if KAZAKH.search(text):
        return "kk"
    return "ru" if CYRILLIC.search(text) else "en"


async def _eventually(check: Callable[[], Any], *, within: float) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "the demo did not get there"
        await asyncio.sleep(0.1)


def _rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database, timeout=10) as connection:
        return list(connection.execute(query))


def _event_counts(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    try:
        return dict(_rows(database, "SELECT kind, count(*) FROM events GROUP BY kind"))
    except sqlite3.OperationalError:  # not migrated yet
        return {}


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Refuse (and record) every connection and name lookup beyond this machine."""
    attempts: list[object] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            attempts.append(address)
            raise OSError(f"the demo tried to reach {address}")
        return connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK and host is not None:
            attempts.append(host)
            raise socket.gaierror(f"the demo tried to look up {host}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return attempts


def test_the_demo_team_reaches_nothing_outside_and_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-1", "TELEGRAM_BOT_TOKEN": "1:x",
                        "DATABASE_URL": "postgresql://elsewhere/db", "REDIS_URL": "redis://x",
                        "CONSOLE_URL": "https://console.example.com"}.items():
        monkeypatch.setenv(name, value)

    settings = show.demo_settings(port=8123, data_dir=tmp_path)
    team = load_team(settings.config_file)

    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'demo.db'}"
    assert settings.redis_url is None
    assert settings.slack_bot_token is None and settings.telegram_bot_token is None
    assert str(settings.console_url).rstrip("/") == "http://127.0.0.1:8123"
    assert not team.channels
    assert {s.kind for s in team.sources} == {"webhook"}  # nothing is polled
    assert all("reply_url" not in s.options for s in team.sources)
    assert all(t.webhook_url is None for t in team.second_line)
    assert {s.tier.value for s in team.sources} == {"main", "extra"}


def test_the_sample_speaks_three_languages_on_every_network_and_both_tiers() -> None:
    team = load_team(show.CONFIG)
    arrivals = sample.load(sources={s.name for s in team.sources})
    tier = {s.name: s.tier.value for s in team.sources}

    assert 40 <= len(arrivals) <= 60
    assert {a.mention.source for a in arrivals} == {s.name for s in team.sources}
    assert {(_language(a.mention.text), tier[a.mention.source]) for a in arrivals} == {
        (language, t) for language in ("ru", "kk", "en") for t in ("main", "extra")}
    assert sum(1 for a in arrivals if a.mention.thread_id) >= 5  # follow-ups in a thread
    assert arrivals[-1].at <= 300  # a few minutes at speed 1
    people = {p.id for p in team.people}
    assert all(a.care.by in people for a in arrivals if a.care.by)


async def test_the_demo_turns_the_sample_into_cases_that_the_shift_works_offline(
    tmp_path: Path, network_attempts: list[object],
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "demo.db").write_bytes(b"left over from the last demo, not even SQLite")
    database = data / "demo.db"
    port = _free_port()
    out = io.StringIO()
    running = asyncio.create_task(demo(out, port=port, speed=100, data_dir=data, seed=1))
    try:
        # The welcome's last line (the sample's arrival ends with the same words, and
        # may come first while the welcome is still hashing the demo's passwords).
        await _eventually(lambda: "\n  Ctrl-C stops the demo.\n" in out.getvalue() or
                          running.done(), within=STUCK_AFTER)
        assert not running.done(), out.getvalue()
        printed = out.getvalue()
        assert f"open http://127.0.0.1:{port}/\n" in printed
        link = re.search(rf"http://127\.0\.0\.1:{port}/signin/link/\S+", printed)
        assert link is not None, printed

        # The link signs the shift lead in, and the wallboard shows the demo's cases.
        jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP address
        async with aiohttp.ClientSession(cookie_jar=jar) as browser:
            async with browser.get(link.group()) as page:
                assert page.status == 200
                body = await page.text()
            assert "Saule" in body
            csrf = re.search(r'name="csrf" value="([^"]+)"', body)
            assert csrf is not None
            async with browser.post(link.group(), data={"csrf": csrf.group(1)}) as signed:
                assert signed.status == 200 and signed.url.path == "/"

            await _eventually(lambda: "the sample is all in" in out.getvalue(),
                              within=STUCK_AFTER)
            async with browser.get(f"http://127.0.0.1:{port}/",
                                   headers={"Accept": "text/html"}) as wallboard:
                assert wallboard.status == 200
                assert "Kcell" in await wallboard.text()

        # The shift claims, answers (replies kept locally), resolves and dismisses.
        counts = await _eventually(
            lambda: (c := _event_counts(database)).get("resolved", 0) >= 10
            and c.get("dismissed", 0) >= 1 and c, within=STUCK_AFTER)
    finally:
        if not running.done():
            os.kill(os.getpid(), signal.SIGINT)  # the demo's own handler takes it
    assert await asyncio.wait_for(running, STUCK_AFTER) == 0

    assert counts["claimed"] >= 10 and counts["agent_message"] >= 10
    assert "the sample is all in: 45 mentions (36 created, 1 dropped (no brand matched), " \
           "8 joined)" in out.getvalue()
    firsts = _rows(database, """
        SELECT c.tier, m.text FROM cases c JOIN mentions m ON m.case_id = c.id
        WHERE m.id = (SELECT min(id) FROM mentions WHERE case_id = c.id)""")
    assert {(tier, _language(text)) for tier, text in firsts} == {
        (t, language) for language in ("ru", "kk", "en") for t in ("main", "extra")}
    actors = {actor for (actor,) in _rows(
        database, "SELECT DISTINCT actor FROM events WHERE kind IN ('claimed', 'resolved')")}
    assert actors <= {"aigerim", "daniyar", "madina", "yerlan", "saule"}
    replies = _rows(database, "SELECT count(*) FROM mentions WHERE from_brand "
                              "AND external_id LIKE 'demo-reply-%'")
    assert replies[0][0] >= 5
    left = _rows(database, "SELECT m.external_id, c.state FROM cases c JOIN mentions m "
                           "ON m.case_id = c.id WHERE m.external_id IN ('ig-3301', 'fr-9201')")
    assert sorted(left) == [("fr-9201", "new"), ("ig-3301", "new")]  # left to breach
    assert network_attempts == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_the_command_prints_the_address_and_stops_cleanly_on_a_signal(
    tmp_path: Path, stop: signal.Signals,
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    # The demo must not pick these up: it has its own database and no messengers.
    env |= {"SLACK_BOT_TOKEN": "xoxb-not-for-the-demo", "TELEGRAM_BOT_TOKEN": "1:not-for-demo",
            "DATABASE_URL": "postgresql://nowhere.invalid/db"}
    args = ["demo", "--port", str(port), "--speed", "200"]
    if stop is signal.SIGTERM:
        args.append("--no-agents")
    process = await asyncio.create_subprocess_exec(
        SCRIPT, *args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(STUCK_AFTER):
            while not any("the sample is all in" in line for line in printed):
                line = (await process.stdout.readline()).decode()
                assert line, "the demo ended early"
                printed.append(line)
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as health:
            assert health.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(stop)
        _, errors = await asyncio.wait_for(process.communicate(), STUCK_AFTER)

    assert process.returncode == 0, errors.decode()[-2000:]
    assert printed[0] == f"socialcare demo is running: open http://127.0.0.1:{port}/\n"
    assert "no messenger configured" in errors.decode()
    assert "Traceback" not in errors.decode()
    counts = _event_counts(tmp_path / "data" / "demo.db")
    assert counts["created"] == 36
    if stop is signal.SIGTERM:  # --no-agents: the cases wait for people
        assert "claimed" not in counts and "resolved" not in counts


def test_the_demo_on_a_taken_port_says_how_to_choose_another(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([SCRIPT, "demo", "--port", str(port)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"socialcare demo: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.splitlines()[-1].endswith("; choose another port with --port")
    assert "Traceback" not in result.stderr
