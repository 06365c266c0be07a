"""The README's first hour, from a clean checkout: `./scripts/start` on a broken `.env`
stops with one line per problem; on a good one, the README's first three commands —
start, a sign-in link, a mention — end in the web console, signed in by that link.

The checkout is this tree's files (tracked and new, nothing ignored: no .venv, no
.env, no data) copied to a temporary directory. To keep the test fast its `.venv` is
made without pip and sees this environment's installed packages; `./scripts/start`
then installs socialcare into it as on any machine (the dependencies are found, so
nothing is downloaded but the build tools, which pip caches).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ROOT
from tests.e2e.test_console import HTML, csrf_of

START_SECONDS = 240  # the install into the new .venv comes first
BROKEN_ENV = ("DATABASE_URL=mysql://care:hunter2@db.internal/socialcare\n"
              "REDIS_URL=redis://127.0.0.1:9/0\n"
              "SLACK_BOT_TOKEN=xoxb-not-a-real-token\n")


def _commands(readme: str) -> list[str]:
    """Return the README's shell commands, block by block, in order."""
    return re.findall(r"^```sh\n(.*?)^```", readme, flags=re.S | re.M)


def _checkout(into: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    # A bare .venv that sees the packages installed here (see the module's docstring).
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(into / ".venv")], check=True)
    site = Path(sysconfig.get_path("purelib"))
    shared = into / ".venv" / site.relative_to(sys.prefix)
    (shared / "_socialcare_test_packages.pth").write_text(f"{site}\n", encoding="utf-8")
    return into


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "SLACK_", "TELEGRAM_", "TEST_",
                                "CONFIG_", "INGEST_", "CONSOLE_", "HTTP_", "VIRTUAL_ENV"))}
    return env | {"HTTP_PORT": str(port)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sh(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=START_SECONDS)


def _wait_for(process: subprocess.Popen[str], words: str) -> list[str]:
    """Read the process's output until a line holds `words`; return the lines read."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + START_SECONDS
    for line in process.stdout:
        lines.append(line)
        if words in line:
            return lines
        assert time.monotonic() < deadline, "".join(lines)
    raise AssertionError(f"ended before {words!r}:\n" + "".join(lines))


async def _sign_in(link: str) -> tuple[int, str, str]:
    """Open the link and press its button; return the page's status, the wallboard it
    leads to, and what the link says when opened again."""
    base = link.split("/signin/", 1)[0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link, headers=HTML) as response:
            page = await response.text()
        async with browser.post(link, data={"csrf": csrf_of(page)}, headers=HTML,
                                allow_redirects=False) as used:
            assert used.status == 303, await used.text()
        async with browser.get(base + "/", headers=HTML) as board:
            wallboard = await board.text()
    async with aiohttp.ClientSession() as stranger, \
            stranger.get(link, headers=HTML) as again:
        return response.status, wallboard, await again.text()


@pytest.mark.timeout(600)
def test_a_fresh_checkout_starts_from_the_readme_and_signs_in_with_its_link(
    tmp_path: Path,
) -> None:
    checkout = _checkout(tmp_path / "socialcare")
    port = _free_port()
    env = _env(port)
    start, link_command, mention = _commands(
        (checkout / "README.md").read_text(encoding="utf-8"))[:3]
    assert start.split("#")[0].strip() == "./scripts/start"
    assert "console link" in link_command and "/ingest" in mention

    # A broken .env: one line per problem, and it does not start.
    (checkout / ".env").write_text(BROKEN_ENV, encoding="utf-8")
    refused = _sh(start, checkout, env)
    said = [line for line in refused.stderr.splitlines() if line.startswith("socialcare")]
    assert refused.returncode != 0
    assert said[:2] == [
        "socialcare: environment: DATABASE_URL: mysql is not supported: socialcare runs on "
        "PostgreSQL (postgresql://user:password@host:5432/name) or SQLite "
        "(sqlite:///path/to/file.db)",
        "socialcare: environment: SLACK_SIGNING_SECRET is needed for Slack over HTTP (or set "
        "SLACK_APP_TOKEN for Socket Mode)",
    ], refused.stderr
    assert said[2].startswith("socialcare: REDIS_URL: cannot reach Redis at "
                              "redis://127.0.0.1:9/0: "), refused.stderr
    assert said[3:] == ["socialcare did not start: fix what is named above, then run "
                        "./scripts/start again"], refused.stderr
    assert "Traceback" not in refused.stderr
    assert "installing socialcare and its dependencies into .venv" in refused.stdout
    assert "checking the environment (.env), the config file, the database and Redis" \
        in refused.stdout
    assert "hunter2" not in refused.stderr + refused.stdout

    # Fixed: only the secret start wrote stays; the README's first three commands.
    secret = [line for line in (checkout / ".env").read_text().splitlines()
              if line.startswith("INGEST_WEBHOOK_SECRET=")]
    (checkout / ".env").write_text("\n".join(secret) + "\n", encoding="utf-8")
    server = subprocess.Popen(["bash", "-c", start], cwd=checkout, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        started = _wait_for(server, "web console:")
        linked = _sh(link_command, checkout, env)
        sent = _sh(mention, checkout, env)
        found = re.search(r"http://127\.0\.0\.1:\d+/signin/link/[\w-]+", linked.stdout)
        assert found is not None, linked.stdout + linked.stderr
        page_status, wallboard, again = asyncio.run(_sign_in(found[0]))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        rest, _ = server.communicate(timeout=60)

    assert "installed." not in "".join(started)  # the broken start installed it already
    assert f"web console: http://127.0.0.1:{port}/" in started[-1]
    assert '"outcome": "created", "case_id": 1' in sent.stdout, sent.stdout + sent.stderr
    assert re.search(r"^1 +new +main +instagram +Kcell ", sent.stdout, flags=re.M), sent.stdout
    assert page_status == 200
    assert 'id="case-1"' in wallboard and "Kcell, no 4G in Almaty again?" in wallboard
    assert "expired or was used already" in again  # one use only
    assert server.returncode == 0, rest

    # Installed again only once pyproject.toml changes.
    with (checkout / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("# a change\n")
    again_installed = _sh('EXTRAS="" source scripts/_venv.sh', checkout, env)
    assert again_installed.returncode == 0, again_installed.stderr
    assert "pyproject.toml changed since the last install" in again_installed.stdout
