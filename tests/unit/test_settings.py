"""Settings: the example config loads; a wrong one is named, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcare.settings import ConfigError, Settings, load_settings, load_team
from tests.conftest import ROOT

EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def test_the_shipped_example_config_loads() -> None:
    team = load_team(ROOT / "config.example.toml")

    assert team.timezone == "Asia/Almaty"
    assert team.source("webhook") is not None
    assert {b.name for b in team.brands} >= {"Kcell"}
    assert team.sla.main.first_response_minutes == 15
    assert team.sla.extra.first_response_minutes == 60


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('timezone = "Asia/Almaty"', 'timezone = "Mars/Olympus"',
         "timezone: unknown 'Mars/Olympus'"),
        ("first_response_minutes = 15", 'first_response_minutes = "soon"',
         "sla.main.first_response_minutes: Input should be a valid integer"),
        ("first_response_minutes = 60", "first_response_minutes = 0",
         "sla.extra: first_response_minutes: must be a positive number of minutes"),
        ('tier = "extra"', 'tier = "side"', "sources[1] (forums).tier: Input should be"),
        ('name = "Kcell"\nkeywords', 'name = "Kcell"\nkeywordz', "brands[0] (Kcell).keywordz: "
         "unknown key"),
        ('role = "lead"', 'role = "boss"', "people[2] (saule).role: Input should be"),
        ('slack = "U0LEAD0001"', 'slack = "U0AGENT001"', "people: slack 'U0AGENT001' appears "
         "twice"),
        ('platform = "forum"', 'platform = "forum"\noptions = { api_token = "abc" }',
         "sources[1].options.api_token: secrets do not belong in the config file"),
        ("[[sources]]", "[[sources]", "not valid TOML"),
        ('silent_minutes = 1440\ntimezone = "Asia/Almaty"',
         'silent_minutes = 1440\ntimezone = "Asia/Atlantis"', "timezone: unknown 'Asia/Atlantis'"),
        ('name = "forums"', 'name = "forums"\nbrand = "Tele2"',
         "sources: 'forums' names brand 'Tele2', which is not in brands"),
    ],
)
def test_a_wrong_config_names_the_file_the_key_and_the_problem(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in EXAMPLE
    path = tmp_path / "broken.toml"
    path.write_text(EXAMPLE.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(ConfigError) as error:
        load_team(path)

    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"file not found.*config\.example\.toml"):
        load_team(tmp_path / "nope.toml")


def test_a_wrong_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PORT", "eighty")

    with pytest.raises(ConfigError, match="environment: HTTP_PORT: Input should be a valid"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "mysql://care:hunter2@db/socialcare",
         "DATABASE_URL: mysql is not supported: socialcare runs on PostgreSQL"),
        ("DATABASE_URL", "postgresql+psycopg2://care@db/socialcare",
         "DATABASE_URL: the driver 'psycopg2' is not supported: write postgresql://…"),
        ("DATABASE_URL", "postgresql://care:hunter2@db:five/socialcare",
         "DATABASE_URL: not a valid URL"),
        ("DATABASE_URL", "care:hunter2@db/socialcare", "DATABASE_URL: not a database URL"),
        ("DATABASE_URL", "sqlite://care:hunter2@db:five/x.db", "DATABASE_URL: not a valid URL"),
        ("REDIS_URL", "127.0.0.1:6379", "REDIS_URL: give redis://host:6379/0"),
        ("REDIS_URL", "redis://:hunter2@cache:port/0", "REDIS_URL: not a valid URL"),
        ("REDIS_URL", "redis:///0", "REDIS_URL: the URL names no host"),
    ],
)
def test_a_wrong_url_is_named_on_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigError) as error:
        load_settings()

    [problem] = error.value.problems
    assert problem.startswith(f"environment: {message}")
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("url", ["sqlite:///x.db", "sqlite+aiosqlite:///x.db",
                                 "postgres://u@h/db", "postgresql+asyncpg://u:p@h:5432/db"])
def test_the_supported_database_urls_are_taken(url: str) -> None:
    assert Settings(database_url=url).database_url == url


@given(path=st.text(), driver=st.sampled_from(["sqlite", "sqlite+aiosqlite"]))
def test_a_sqlite_url_without_a_host_is_taken_as_sqlalchemy_takes_it(path: str,
                                                                    driver: str) -> None:
    # Such URLs are taken without SQLAlchemy (`socialcare cases` starts without it):
    # SQLAlchemy must read every one of them too.
    from sqlalchemy.engine import make_url

    url = f"{driver}:///{path}"

    assert Settings(database_url=url).database_url == url
    assert make_url(url).get_backend_name() == "sqlite"


def test_plain_database_urls_get_an_async_driver() -> None:
    assert Settings(database_url="postgresql://u@h/db").async_database_url == (
        "postgresql+asyncpg://u@h/db"
    )
    assert Settings(database_url="sqlite:///x.db").async_database_url == "sqlite+aiosqlite:///x.db"


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = Settings(ingest_webhook_secret="hunter2", slack_bot_token="xoxb-secret")
    assert "hunter2" not in repr(settings)
    assert "xoxb-secret" not in repr(settings)


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    proxies = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8,::1").proxies
    none = Settings(trusted_proxies="").proxies
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1, proxy.internal")

    assert [str(p) for p in proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert none == ()
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXIES: 'proxy\.internal' "
                                          r"is not an address or a network"):
        load_settings()
