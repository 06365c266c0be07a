"""The command line starts at once: `import socialcare.main` loads the standard library
only, and `socialcare cases` none of the messengers', the web server's or the charts'
libraries — nor, on the embedded default, SQLAlchemy. Each command imports what it needs
in its own function (benchmark h times the whole commands)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Never loaded by `socialcare cases`: it reads the database and prints.
HEAVY = ("slack_bolt", "slack_sdk", "telegram", "matplotlib", "aiohttp", "alembic",
         "fakeredis", "redis", "jinja2", "feedparser", "prometheus_client", "numpy")


def _modules(code: str, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    """Return the modules a fresh interpreter holds after running `code`."""
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_importing_the_command_line_loads_the_standard_library_only(tmp_path: Path) -> None:
    bare = _modules("", tmp_path)
    loaded = _modules("import socialcare.main", tmp_path) - bare

    ours = {name for name in loaded if name.split(".")[0] == "socialcare"}
    others = {name for name in loaded - ours
              if name.split(".")[0].lstrip("_") not in sys.stdlib_module_names
              and name.split(".")[0] not in sys.stdlib_module_names}
    assert others == set(), "import these inside the command that needs them"
    assert ours == {"socialcare", "socialcare.main", "socialcare.roles"}


def _embedded(tmp_path: Path) -> dict[str, str]:
    """Return the environment of the embedded default on a migrated SQLite file."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "SLACK_", "TELEGRAM_", "TEST_"))}
    env |= {"CONFIG_FILE": str(ROOT / "config.example.toml"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'socialcare.db'}"}
    subprocess.run([sys.executable, "-m", "socialcare.main", "db", "upgrade"], cwd=tmp_path,
                   env=env, check=True, capture_output=True, timeout=120)
    return env


def test_listing_the_cases_loads_no_messenger_web_or_chart_library(tmp_path: Path) -> None:
    env = _embedded(tmp_path)

    loaded = _modules("from socialcare.main import cli\n"
                      "assert cli(['cases']) == 0", tmp_path, env)

    assert sorted(name for name in loaded if name.split(".")[0] in HEAVY) == []


def test_listing_the_cases_of_an_embedded_database_loads_no_sqlalchemy(tmp_path: Path) -> None:
    env = _embedded(tmp_path)
    mention = {"source": "webhook", "external_id": "1", "platform": "instagram",
               "text": "Kcell, no 4G in Almaty", "published_at": "2026-11-25T10:00:00+05:00",
               "author": {"handle": "@aigerim"}}
    subprocess.run([sys.executable, "-m", "socialcare.main", "ingest", "-"], cwd=tmp_path,
                   env=env, input=json.dumps(mention) + "\n", text=True, check=True,
                   capture_output=True, timeout=120)

    # Both URL forms of the embedded default: plain and with the async driver named.
    for url in (env["DATABASE_URL"], env["DATABASE_URL"].replace("sqlite:", "sqlite+aiosqlite:")):
        loaded = _modules(
            "import io, contextlib\nfrom socialcare.main import cli\nout = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n    assert cli(['cases']) == 0\n"
            "assert '@aigerim' in out.getvalue() and '(1 open, ' in out.getvalue()",
            tmp_path, env | {"DATABASE_URL": url})

        # SQLAlchemy alone is most of the command's start; the file is read with sqlite3.
        assert sorted(name for name in loaded if name.split(".")[0] == "sqlalchemy") == []
        assert "sqlite3" in loaded
