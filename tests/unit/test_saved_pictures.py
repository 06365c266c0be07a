"""Saved replies' pictures in the config: found next to it, and pictures indeed; the
example's own saved replies carry the two pictograms the project ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socialcare.settings import ConfigError, load_team
from tests.conftest import ROOT, write_config

EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def _config(tmp_path: Path, image: str) -> Path:
    return write_config(tmp_path / "socialcare.toml", EXAMPLE + '\n[[saved_replies]]\n'
                        f'title = "APN"\ntext = "How to"\nimage = "{image}"\n')


def test_the_examples_saved_replies_carry_the_shipped_pictograms() -> None:
    team = load_team(ROOT / "config.example.toml")
    pictured = sorted(Path(r.image).name for r in team.saved_replies if r.image)
    assert pictured == sorted(p.name for p in (ROOT / "pictures").iterdir())
    assert all(Path(r.image).parent == ROOT / "pictures" for r in team.saved_replies if r.image)


def test_the_example_copied_without_its_pictures_names_the_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "socialcare.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape("'pictures/apn-setup.png' cannot be read")):
        load_team(path, check_sources=False)


def test_a_saved_replys_picture_is_found_next_to_the_config(tmp_path: Path) -> None:
    team = load_team(_config(tmp_path, "pictures/apn-setup.png"), check_sources=False)
    [saved] = [r for r in team.saved_replies if r.title == "APN"]
    assert Path(saved.image or "") == (tmp_path / "pictures" / "apn-setup.png").resolve()


@pytest.mark.parametrize(("image", "problem"), [
    ("pictures/missing.png", "'APN': image 'pictures/missing.png' cannot be read"),
    ("socialcare.toml", "'APN': 'socialcare.toml' is not a PNG, JPEG, GIF or WebP picture"),
])
def test_a_missing_or_strange_picture_is_named_when_the_config_loads(
        tmp_path: Path, image: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_team(_config(tmp_path, image), check_sources=False)
