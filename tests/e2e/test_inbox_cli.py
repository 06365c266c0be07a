"""`socialcare inbox …` as an admin runs it (what each command does is pinned in
tests/integration/test_inbox_admin.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import database_url, reset_database
from tests.e2e.test_cli import SCRIPT, _env, _run


def test_inbox_has_help_naming_its_commands() -> None:
    result = subprocess.run([SCRIPT, "inbox", "--help"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: socialcare inbox")
    assert all(command in result.stdout for command in ("list", "retry", "drop"))


async def test_inbox_list_on_a_fresh_database_and_a_missing_id(tmp_path: Path) -> None:
    await reset_database(database_url(tmp_path))
    env = _env(tmp_path)
    listed = _run(["inbox", "list"], env)
    missing = _run(["inbox", "drop", "7"], env)

    assert (listed.returncode, listed.stdout.strip()) == (0, "no dead letters")
    assert missing.returncode == 2
    assert "no dead letter 7" in missing.stderr
