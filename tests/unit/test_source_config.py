"""Sources in the config: every kind loads from config.example.toml and is built from
the environment's secrets; a wrong option or a missing secret is named."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from telegram import Bot

from socialcare.adapters.collectors import kinds
from socialcare.settings import ConfigError, load_team
from tests.conftest import ROOT, FakeClock, write_config

EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
SECRETS = sorted(set(re.findall(r'_env = "([A-Z_]+)"', EXAMPLE)))


def _all_enabled(tmp_path: Path) -> Path:
    """The example with every source on, and the options shown commented out set too."""
    path = tmp_path / "all.toml"
    text = EXAMPLE.replace("enabled = false", "enabled = true")
    text = text.replace('# app_secret_env = "THREADS_APP_SECRET"',
                        'app_secret_env = "THREADS_APP_SECRET"')
    text = text.replace('# verify_token_env = "THREADS_VERIFY_TOKEN"',
                        'verify_token_env = "THREADS_VERIFY_TOKEN"')
    return write_config(path, text)


def test_the_example_config_has_every_kind_of_source_but_runs_only_the_webhooks() -> None:
    # The sources' kinds (a second-line team has a kind too: "callback").
    sources = [block for block in EXAMPLE.split("\n[[") if block.startswith("sources]]")]
    kinds_in_example = {kind for block in sources
                        for kind in re.findall(r'^kind = "(\w+)"', block, flags=re.MULTILINE)}
    team = load_team(ROOT / "config.example.toml")

    assert kinds_in_example == set(kinds.OPTIONS)
    assert [s.name for s in team.sources] == ["webhook", "forums"]


async def test_every_source_of_the_example_is_built_from_the_environments_secrets(
    tmp_path: Path, clock: FakeClock
) -> None:
    team = load_team(_all_enabled(tmp_path))
    environ = {name: f"secret-of-{name.lower()}" for name in SECRETS}
    bot = Bot("123456:TEST-TOKEN")

    async with aiohttp.ClientSession() as session:
        built = kinds.build(team, session=session, clock=clock, environ=environ,
                            telegram_bot=bot, team_chats={"-1001234567890"})

    assert set(built.pollers) == {"autoforum", "tengrinews", "vk", "youtube", "x", "tiktok",
                                  "threads", "shop-reviews", "aksay-forum",
                                  "aksay-news-comments"}
    assert set(built.mapped) == {"youscan"}
    assert set(built.meta) == {"meta"}
    assert set(built.threads) == {"threads"}  # its webhooks, beside its polls
    assert set(built.telegram) == {"telegram-groups"}
    assert set(built.publishers) == {"vk", "youtube", "x", "meta", "telegram-groups", "tiktok",
                                     "threads", "shop-reviews"}


@pytest.mark.parametrize("missing", SECRETS)
async def test_a_secret_missing_from_the_environment_is_named_with_its_source(
    tmp_path: Path, clock: FakeClock, missing: str
) -> None:
    team = load_team(_all_enabled(tmp_path))
    environ = {name: "set" for name in SECRETS if name != missing}

    async with aiohttp.ClientSession() as session:
        with pytest.raises(kinds.MissingSecret, match=f"environment: {missing} is not set"):
            kinds.build(team, session=session, clock=clock, environ=environ,
                        telegram_bot=Bot("123456:TEST-TOKEN"))


async def test_a_telegram_source_without_the_telegram_bot_says_what_to_set(
    tmp_path: Path, clock: FakeClock
) -> None:
    team = load_team(_all_enabled(tmp_path))

    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN is not set"):
            kinds.build(team, session=session, clock=clock,
                        environ={name: "set" for name in SECRETS}, telegram_bot=None)


def test_every_missing_secret_is_a_problem_of_its_own_line(tmp_path: Path) -> None:
    team = load_team(_all_enabled(tmp_path))

    problems = kinds.problems(team, {}, telegram_bot=False)
    complete = kinds.problems(team, {name: "set" for name in SECRETS}, telegram_bot=True)

    # Every variable an enabled source needs is named, and the Telegram bot it reads with.
    for name in SECRETS:
        assert sum(f"environment: {name} is not set" in line for line in problems) == 1, name
    assert any("TELEGRAM_BOT_TOKEN is not set" in line for line in problems)
    assert all("\n" not in line for line in problems)
    assert complete == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kind = "x"', 'kind = "myspace"', "sources[7] (x).kind: unknown kind 'myspace'"),
        ('options = { url = "https://news.example.kz/rss" }', "options = {}",
         "sources[3] (tengrinews).options.url: Field required"),
        ('options = { url = "https://news.example.kz/rss" }',
         'options = { url = "not a url" }', "sources[3] (tengrinews).options.url: "),
        ("walls = [-12345678]", 'wallz = [-12345678]',
         "sources[5] (vk).options.wallz: unknown option"),
        ("daily_quota = 10000", "daily_quota = 0",
         "sources[6] (youtube).options.daily_quota: Input should be greater than or equal"),
        ('signature = "hmac-sha256"', 'signature = "md5"',
         "sources[4] (youscan).options.signature: Input should be"),
        ('text = "text"\n', "", "sources[4] (youscan).options.fields.text: Field required"),
        ('key_env = "YOUTUBE_API_KEY"', 'api_key = "AIzaSy-real-key"',
         "sources[6].options.api_key: secrets do not belong in the config file"),
        ('app_id = "7300000000000000001"\n', "",
         "sources[9] (tiktok).options: refresh_token_env needs app_id and app_secret_env"),
        ("posts = 10", "posts = 0", "sources[10] (threads).options.posts: Input should be"),
        ('# app_secret_env = "THREADS_APP_SECRET"', 'app_secret_env = "THREADS_APP_SECRET"',
         "sources[10] (threads).options: webhooks need both app_secret_env and "
         "verify_token_env"),
        ('locations = ["5500000000000000001", "5500000000000000002"]', "locations = []",
         "sources[11] (shop-reviews).options.locations: Tuple should have at least 1 item"),
        ('item = "div.search.post"', 'item = "div.search[["',
         "sources[13] (aksay-forum).options.item: not a CSS selector: 'div.search[['"),
        ('urls = ["https://news.example.kz/news/2026/11/24/kcell-tariffs"]', "",
         "sources[14] (aksay-news-comments).options: give url or urls (one of them)"),
    ],
)
def test_a_wrong_source_option_names_the_source_and_the_option(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in EXAMPLE
    path = tmp_path / "broken.toml"
    path.write_text(EXAMPLE.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_team(path)

    assert message in str(error.value)
    assert "\n" not in str(error.value)
