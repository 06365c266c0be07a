"""The Slack app manifest and the code cannot drift apart.

PyYAML is not a dependency, so the manifest is read line by line: its commands, its
request URLs and its bot scopes.
"""

from __future__ import annotations

import re

from socialcare.handlers.commands import COMMANDS
from tests.conftest import ROOT

MANIFEST = ROOT / "slack-app-manifest.yml"


def _lines() -> list[str]:
    text = MANIFEST.read_text(encoding="utf-8")
    return [line.split(" #", 1)[0].rstrip() for line in text.splitlines()
            if not line.lstrip().startswith("#")]


def _values(key: str) -> list[str]:
    pattern = re.compile(rf"^\s*(?:- )?{re.escape(key)}:\s*(\S.*)$")
    return [match.group(1).strip().strip("\"'") for line in _lines()
            if (match := pattern.match(line))]


def test_the_manifest_ships_at_the_repository_root() -> None:
    assert MANIFEST.is_file()
    assert "_metadata:" in _lines()


def test_the_manifest_declares_exactly_the_commands_the_bot_serves() -> None:
    assert sorted(_values("command")) == sorted(f"/{name}" for name in COMMANDS)


def test_every_request_url_points_at_the_slack_events_route() -> None:
    urls = _values("url") + _values("request_url")

    assert len(urls) == len(COMMANDS) + 1
    for url in urls:
        assert url.startswith("https://"), url
        assert url.endswith("/slack/events"), url


def test_the_bot_asks_for_the_scopes_it_uses_and_no_more() -> None:
    lines = _lines()
    start = lines.index("    bot:")
    scopes = []
    for line in lines[start + 1:]:
        if not line.startswith("      - "):
            break
        scopes.append(line.removeprefix("      - "))

    assert sorted(scopes) == sorted([
        "chat:write", "commands", "files:write", "files:read", "pins:write", "im:write",
        "channels:history", "groups:history",
    ])
