"""Fake Slack and Telegram (tests/fakes) with the team's channels and people.

The fakes speak the real wire formats and enforce the real rate limits — Slack: one
post a second per channel (a burst of 3), chat.update 50 a minute; Telegram: one
message a second per chat, 20 a minute per group, 30 a second overall — answering
429 with Retry-After, so the real slack-bolt, slack_sdk and python-telegram-bot code
runs against them and has to live within the limits.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from benchmarks.running import CONFIG, SLACK_CHANNEL, TELEGRAM_CHAT, Endpoints
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram


@dataclass(frozen=True)
class Fakes:
    """The messengers' fake servers, or None for a messenger left out."""

    slack: FakeSlack | None = None
    telegram: FakeTelegram | None = None

    def endpoints(self) -> Endpoints:
        """Return the fakes' addresses and credentials."""
        slack, telegram = self.slack, self.telegram
        return Endpoints(
            slack_url=slack.url if slack else None,
            slack_token=slack.bot_token if slack else None,
            slack_signing_secret=slack.signing_secret if slack else None,
            telegram_url=telegram.url if telegram else None,
            telegram_token=telegram.token if telegram else None,
        )


def _people() -> list[dict[str, str]]:
    """Return the people of the benchmarks' config file who have a Slack id."""
    with CONFIG.open("rb") as config:
        return [p for p in tomllib.load(config).get("people", []) if p.get("slack")]


@asynccontextmanager
async def fakes(*, slack: bool = True, telegram: bool = True) -> AsyncIterator[Fakes]:
    """Start fake Slack and Telegram with the team's channel and people."""
    async with AsyncExitStack() as stack:
        fake_slack = fake_telegram = None
        if slack:
            fake_slack = await stack.enter_async_context(FakeSlack())
            fake_slack.add_channel("care", channel_id=SLACK_CHANNEL)
            for person in _people():  # the agent clicking, the directors cards go to
                fake_slack.add_user(person["slack"], name=person["id"])
        if telegram:
            fake_telegram = await stack.enter_async_context(FakeTelegram())
            fake_telegram.add_chat(TELEGRAM_CHAT, title="Care team")
        yield Fakes(fake_slack, fake_telegram)
