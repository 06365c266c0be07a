"""scripts/test's pytest: one line of progress per test file, and why each skip was."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_the_test_run_shows_each_file_and_the_reason_of_every_skip(tmp_path: Path) -> None:
    [line] = [line for line in (ROOT / "scripts" / "test").read_text().splitlines()
              if line.startswith("exec .venv/bin/pytest")]
    options = [word for word in shlex.split(line)[2:] if word != "$@"]
    (tmp_path / "test_first.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "test_second.py").write_text(
        "import pytest\n\n\ndef test_two():\n    pass\n\n\n"
        "@pytest.mark.skip(reason='needs the moon')\ndef test_three():\n    pass\n")

    result = subprocess.run([sys.executable, "-m", "pytest", *options, "-p", "no:cacheprovider",
                             "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout
    assert re.search(r"^test_first\.py \. +\[ *\d+%\]$", result.stdout, flags=re.M), result.stdout
    assert re.search(r"^test_second\.py \.s +\[100%\]$", result.stdout, flags=re.M), \
        result.stdout
    assert re.search(r"^SKIPPED \[1\] test_second\.py:\d+: needs the moon$", result.stdout,
                     flags=re.M), result.stdout
