"""The first hour at the command line: check-config finds whatever `run` would refuse,
wrong URLs are one line each, the console can be entered from the terminal, and the
small commands say what they did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_REDIS_URL, database_url, reset_database, write_config

SCRIPT = str(Path(sys.executable).parent / "socialcare")
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "SLACK_", "TELEGRAM_", "REDIS_", "DATABASE_"))}
    env.update(CONFIG_FILE=str(ROOT / "config.example.toml"),
               DATABASE_URL=database_url(tmp_path), INGEST_WEBHOOK_SECRET="cli-secret")
    if TEST_REDIS_URL:
        env["REDIS_URL"] = TEST_REDIS_URL
    return env | extra


def _run(args: list[str], env: dict[str, str], cwd: Path,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60)


def _said(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Return what the command said about problems: its own lines on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("socialcare")]


def _columns(text: str) -> int:
    """Return how wide a terminal shows text: an emoji takes two columns."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _youscan_enabled(tmp_path: Path) -> str:
    path = tmp_path / "youscan.toml"
    block = EXAMPLE.index('name = "youscan"')
    enabled = EXAMPLE[:block] + EXAMPLE[block:].replace("enabled = false", "enabled = true", 1)
    return str(write_config(path, enabled))


# Each broken setup, and the start of the one line that names its problem.
BROKEN = {
    "enabled source without its secret": (
        lambda tmp: {"CONFIG_FILE": _youscan_enabled(tmp)},
        "socialcare: environment: YOUSCAN_SECRET is not set (sources 'youscan' "
        "options.secret_env names it)"),
    "Slack token without its signing secret": (
        lambda tmp: {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": "http://127.0.0.1:9/api/"},
        "socialcare: environment: SLACK_SIGNING_SECRET is needed for Slack over HTTP"),
    "MySQL": (
        lambda tmp: {"DATABASE_URL": "mysql://care:hunter2@db.internal/socialcare"},
        "socialcare: environment: DATABASE_URL: mysql is not supported: socialcare runs on "
        "PostgreSQL"),
    "unreachable database": (
        lambda tmp: {"DATABASE_URL": "postgresql://care:hunter2@127.0.0.1:9/socialcare"},
        "socialcare: DATABASE_URL: cannot reach the database at "
        "postgresql+asyncpg://care:***@127.0.0.1:9/socialcare: "),
    "unreachable Redis": (
        lambda tmp: {"REDIS_URL": "redis://:hunter2@127.0.0.1:9/0"},
        "socialcare: REDIS_URL: cannot reach Redis at redis://:***@127.0.0.1:9/0: "),
}


@pytest.mark.parametrize("setup", sorted(BROKEN))
def test_check_config_names_what_run_refuses_on_one_line_and_run_refuses_it(
    tmp_path: Path, setup: str
) -> None:
    changes, line = BROKEN[setup]
    env = _env(tmp_path, HTTP_PORT=str(_free_port())) | changes(tmp_path)

    checked = _run(["check-config"], env, tmp_path)
    started = _run(["run"], env, tmp_path)

    for result in (checked, started):
        assert result.returncode != 0, result.stderr
        assert len(_said(result)) == 1, result.stderr
        assert _said(result)[0].startswith(line), result.stderr
        assert "Traceback" not in result.stderr
        assert "hunter2" not in result.stderr
    assert "socialcare is up" not in started.stderr


def test_check_config_names_every_problem_of_a_broken_env_file_each_on_its_own_line(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text(
        "DATABASE_URL=mysql://care@db/socialcare\nHTTP_PORT=eighty\n"
        "REDIS_URL=redis://127.0.0.1:9/0\nSLACK_BOT_TOKEN=xoxb-1\n", encoding="utf-8")
    env = {k: v for k, v in _env(tmp_path, CONFIG_FILE=_youscan_enabled(tmp_path)).items()
           if k not in ("DATABASE_URL", "REDIS_URL")}

    result = _run(["check-config"], env, tmp_path)

    assert result.returncode == 2
    said = _said(result)
    assert [line.split(":")[1:3] for line in said] == [
        [" environment", " DATABASE_URL"],
        [" environment", " HTTP_PORT"],
        [" environment", " SLACK_SIGNING_SECRET is needed for Slack over HTTP (or set "
                         "SLACK_APP_TOKEN for Socket Mode)"],
        [" environment", " YOUSCAN_SECRET is not set (sources 'youscan' options.secret_env "
                         "names it)"],
        [" REDIS_URL", " cannot reach Redis at redis"],
    ], result.stderr


def test_check_config_passes_what_run_starts_and_says_what_it_tried(tmp_path: Path) -> None:
    env = _env(tmp_path)

    result = _run(["check-config"], env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "config.example.toml: ok — 2 brand(s), 2 source(s)" in result.stdout
    assert "database: answers at " in result.stdout
    assert ("redis: answers at redis://" if TEST_REDIS_URL else
            "redis: in-process (REDIS_URL is not set)") in result.stdout


def test_run_says_where_the_console_is_and_how_to_get_in(tmp_path: Path) -> None:
    asyncio.run(reset_database(database_url(tmp_path)))
    port = _free_port()
    server = subprocess.Popen([SCRIPT, "run"], env=_env(tmp_path, HTTP_PORT=str(port)),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        assert server.stdout is not None
        lines = []
        for line in server.stdout:
            lines.append(line)
            if "web console" in line:
                break
    finally:
        server.terminate()
        server.wait(30)

    assert f"web console: http://127.0.0.1:{port}/ — sign in with a one-time link from " \
           "`socialcare console link PERSON-ID`; or with a password set by `socialcare " \
           "console password PERSON-ID`" in lines[-1], "".join(lines)


def test_console_link_names_the_roster_when_the_person_is_not_in_it(tmp_path: Path) -> None:
    asyncio.run(reset_database(database_url(tmp_path)))

    result = _run(["console", "link", "nobody"], _env(tmp_path), tmp_path)

    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "'nobody' is not in the roster of "
        f"{ROOT / 'config.example.toml'} (people: aigerim, daniyar, saule, nurlan, askar, "
        "gulnara, admin)")


def test_console_link_points_at_console_url_when_it_is_set(tmp_path: Path) -> None:
    asyncio.run(reset_database(database_url(tmp_path)))

    result = _run(["console", "link", "Saule"],
                  _env(tmp_path, CONSOLE_URL="https://care.example.com"), tmp_path)

    assert result.returncode == 0, result.stderr
    assert re.search(r"^  https://care\.example\.com/signin/link/[\w-]{40,}$", result.stdout,
                     flags=re.M), result.stdout
    assert "for Saule (saule, lead), good for 15 minutes and one use" in result.stdout


def _mention(external_id: str, text: str) -> str:
    return json.dumps({"source": "webhook", "external_id": external_id, "text": text,
                       "published_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                       "platform": "instagram", "author": {"handle": f"@{external_id}"}})


def test_cases_marks_urgent_ones_first_among_equal_deadlines_and_says_what_limit_hid(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    asyncio.run(reset_database(env["DATABASE_URL"]))
    lines = [_mention("a", "Kcell, where is my refund?"),
             _mention("b", "Kcell, я подам в суд за списания"),
             _mention("c", "Kcell, no 4G again, call 87771234512"),
             _mention("d", "Kcell roaming?"),
             _mention("e", "Kcell?")]
    # One publication time: five cases with one deadline.
    stamp = json.loads(lines[0])["published_at"]
    body = "\n".join(json.dumps(json.loads(line) | {"published_at": stamp}) for line in lines)
    assert _run(["ingest", "-"], env, tmp_path, stdin=body + "\n").returncode == 0

    everything = _run(["cases"], env, tmp_path)
    two = _run(["cases", "--limit", "2"], env, tmp_path)

    assert everything.returncode == 0, everything.stderr
    rows = everything.stdout.splitlines()
    assert rows[1].split()[:3] == ["2", "new", "🔥"], everything.stdout
    assert [row.split()[0] for row in rows[2:6]] == ["1", "3", "4", "5"]
    assert "🔥" not in "".join(rows[2:])
    # The terminal is no place for a customer's number either.
    assert "Kcell, no 4G again, call +7 7** *** **12" in rows[3]
    assert "87771234512" not in everything.stdout
    # The columns stay aligned though the mark is two columns wide.
    assert len({_columns(row[:row.index("main")]) for row in rows[1:6]}) == 1, everything.stdout
    assert rows[-1] == "(5 open, times in Asia/Almaty)"
    assert two.stdout.splitlines()[-1] == "(2 of 5 open shown (--limit 2), times in Asia/Almaty)"


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_cases_refuses_a_limit_below_one(tmp_path: Path, limit: str) -> None:
    result = _run(["cases", f"--limit={limit}"], _env(tmp_path), tmp_path)

    assert result.returncode == 2
    assert f"argument --limit: {limit!r}: give a whole number, at least 1" in result.stderr


def test_a_wrong_role_lists_the_roles_by_name() -> None:
    result = subprocess.run([SCRIPT, "run", "--role", "worker"], capture_output=True,
                            text=True, timeout=30)

    assert result.returncode == 2
    assert ("invalid choice: 'worker' (choose from 'all', 'collectors', 'workers', "
            "'messengers', 'scheduler')") in result.stderr
    assert "Role." not in result.stderr


def test_a_database_migrated_by_a_newer_version_is_named_on_one_line(tmp_path: Path) -> None:
    # The message, not the back end, is under test: a SQLite file of its own.
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'newer.db'}")
    assert _run(["db", "upgrade"], env, tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "newer.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0999'")

    for command in (["cases"], ["check-config"], ["run"]):
        result = _run(command, env | {"HTTP_PORT": str(_free_port())}, tmp_path)
        assert result.returncode != 0, command
        assert _said(result) == [
            "socialcare: DATABASE_URL: the database is at migration 0999, which this version "
            "of socialcare does not have: a newer version migrated it. Run that version, or "
            "point DATABASE_URL at another database"], result.stderr
        assert "Traceback" not in result.stderr
