"""What the README shows a new team is what socialcare does: the order of the first
steps, the example config error, the shape of `/ingest`'s answer. (The first three
commands themselves run from a clean checkout in tests/e2e/test_readme_start.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from socialcare.settings import ConfigError, load_team
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_install_step_comes_before_the_demo() -> None:
    assert README.index("./scripts/start") < README.index("socialcare demo")


def test_the_example_config_error_is_the_one_socialcare_gives(tmp_path: Path) -> None:
    found = re.search(r"e\.g\. `(socialcare\.toml: people\[2\] \(saule\)\.role: [^`]*)`",
                      README.replace("\n", " "))
    assert found is not None, "the Configuration section's example error"
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    person = example.index('id = "saule"')
    role = example.index('role = "lead"', person)
    config = tmp_path / "socialcare.toml"
    config.write_text(example[:role] + 'role = "boss"' + example[role + len('role = "lead"'):],
                      encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_team(config)

    assert error.value.problems == (f"{tmp_path}/{found[1]}",)


def test_every_ingest_answer_shown_is_wrapped_in_results() -> None:
    answers = [json.loads(block) for block in re.findall(r"^(\{\"results\": .*?\]\})$", README,
                                                         flags=re.M | re.S)]

    assert len(answers) >= 2
    for answer in answers:
        assert set(answer) == {"results"}
        assert all({"external_id", "outcome"} <= set(item) for item in answer["results"])
