"""Saved replies' pictures in the config: found next to it, and pictures indeed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from socialcare.settings import ConfigError, load_team
from tests.conftest import ROOT

EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def _config(tmp_path: Path, image: str) -> Path:
    path = tmp_path / "socialcare.toml"
    path.write_text(EXAMPLE + f'\n[[saved_replies]]\ntitle = "APN"\ntext = "How to"\n'
                    f'image = "{image}"\n', encoding="utf-8")
    return path


def test_a_saved_replys_picture_is_found_next_to_the_config(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "pictures", tmp_path / "pictures")
    team = load_team(_config(tmp_path, "pictures/apn-setup.png"), check_sources=False)
    [saved] = [r for r in team.saved_replies if r.image]
    assert Path(saved.image or "") == (tmp_path / "pictures" / "apn-setup.png").resolve()


@pytest.mark.parametrize(("image", "problem"), [
    ("pictures/missing.png", "cannot be read"),
    ("socialcare.toml", "is not a PNG, JPEG, GIF or WebP picture"),
])
def test_a_missing_or_strange_picture_is_named_when_the_config_loads(
        tmp_path: Path, image: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_team(_config(tmp_path, image), check_sources=False)
