"""h. How fast the command line answers: `socialcare --help` and `socialcare cases`.

Each is the whole command as an operator runs it — the installed `socialcare` script
in a fresh process, from start to exit — on the embedded default (a SQLite file with
20 open cases, the example config). Modules run from their cached bytecode, as an
installed package's do: the environment's PYTHONDONTWRITEBYTECODE is dropped and the
cache kept in the run's own directory (PYTHONPYCACHEPREFIX), filled by a first run
that is not timed. Measured in turns with the baseline of the same run: a bare Python
importing the libraries `cases` cannot do without (pydantic-settings for the
environment, pydantic for the config, sqlite3), so that a busy machine shows in both;
and each command's CPU time, which a busy machine stretches less than the wall time.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.table import Figure, at_most

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "socialcare")
TARGET_SECONDS = 0.6
OPEN_CASES = 20
LIBRARIES = "import pydantic_settings, pydantic, sqlite3"


def _timed(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run a command to its end; return its wall time and its CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _mentions() -> str:
    published = datetime.now(UTC) - timedelta(minutes=5)
    return "".join(json.dumps({
        "source": "webhook", "external_id": f"bench-{n}", "platform": "instagram",
        "text": f"Kcell, no 4G in Almaty again ({n})", "published_at": published.isoformat(),
        "author": {"handle": f"@customer{n}"}}) + "\n" for n in range(OPEN_CASES))


def _prepare(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "SLACK_", "TELEGRAM_", "TEST_"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env |= {"CONFIG_FILE": str(ROOT / "config.example.toml"),
            "DATABASE_URL": f"sqlite:///{workdir / 'socialcare.db'}",
            "PYTHONPYCACHEPREFIX": str(workdir / "bytecode")}
    subprocess.run([SCRIPT, "ingest", "-"], input=_mentions(), text=True, env=env,
                   cwd=workdir, check=True, capture_output=True, timeout=120)
    return env


def _run(runs: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"help": [], "cases": [], "libraries": [],
                                       "cases cpu": []}
    with tempfile.TemporaryDirectory(prefix="socialcare-cli-") as tmp:
        workdir = Path(tmp)
        env = _prepare(workdir)
        commands = {"help": [SCRIPT, "--help"], "cases": [SCRIPT, "cases"],
                    "libraries": [sys.executable, "-c", LIBRARIES]}
        for command in commands.values():  # warm the file and bytecode caches once
            _timed(command, env, workdir)
        for n in range(runs):
            for name, command in commands.items():
                wall, cpu = _timed(command, env, workdir)
                timings[name].append(wall)
                if name == "cases":
                    timings["cases cpu"].append(cpu)
            log(f"h. run {n + 1}/{runs}: " + ", ".join(
                f"{name} {values[-1]:.2f} s" for name, values in timings.items()))
    return timings


async def measure(*, runs: int, log: Callable[[str], None] = print) -> list[Figure]:
    """Time `socialcare --help` and `socialcare cases`, `runs` times each, in turns."""
    timings = await asyncio.to_thread(_run, runs, log)
    ratios = [c / lib for c, lib in zip(timings["cases"], timings["libraries"], strict=True)]
    return [
        at_most("h. socialcare --help, whole command", timings["help"], "s", TARGET_SECONDS),
        at_most("h. socialcare cases, whole command", timings["cases"], "s", TARGET_SECONDS,
                note=f"SQLite, {OPEN_CASES} open cases, the example config; load average "
                     f"{os.getloadavg()[0]:.1f}"),
        at_most("h. socialcare cases, CPU time", timings["cases cpu"], "s",
                note="user + system time of the process: what a busy machine stretches "
                     "least"),
        at_most("h. cases ÷ importing its libraries alone", ratios, "×",
                note="the libraries: pydantic-settings, pydantic, sqlite3; median of the "
                     "run-by-run ratios"),
    ]
