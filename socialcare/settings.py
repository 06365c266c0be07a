"""Settings: the environment (and `.env`) for where things are and secrets; the TOML
config file for the team — brands, SLA, sources, channels, people.

A wrong setting stops start-up with one line naming the file (or the environment),
the key and the problem.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import AnyHttpUrl, Field, SecretStr, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from socialcare.bot.answers.pictures import sniff
from socialcare.bot.catalog import Catalog
from socialcare.bot.team import SavedReply, Team

LOCALES = resources.files("socialcare") / "locales"

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/socialcare.db"
# Option names that smell of a secret: those belong in the environment.
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "access_key")

# The largest picture a saved reply may carry (Telegram's upload limit is 10 MB).
MAX_SAVED_IMAGE = 10 * 1024 * 1024


# The databases socialcare runs on, by SQLAlchemy back end, and the drivers it uses.
_DATABASES = {"sqlite": ("aiosqlite",), "postgresql": ("asyncpg",)}
_REDIS_SCHEMES = ("redis", "rediss", "unix")


class ConfigError(Exception):
    """Settings are wrong; each problem is one line naming where and what."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """The environment variables of DESIGN.md's interface contract."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    config_file: Path = Path("socialcare.toml")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_url: AnyHttpUrl | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org/bot")
    ingest_webhook_secret: SecretStr | None = None
    handoff_webhook_secret: SecretStr | None = None
    # Set: GET /metrics wants `Authorization: Bearer <it>`.
    metrics_token: SecretStr | None = None
    # Announcements to e-mail audiences: smtps://user:password@host:465 or
    # smtp://user:password@host:587 (STARTTLS); the From address; a CA bundle for a
    # relay with a private certificate.
    smtp_url: SecretStr | None = None
    smtp_from: str | None = None
    smtp_ca_file: Path | None = None
    # HMAC secret of announcements POSTed to audiences' webhooks.
    announcement_webhook_secret: SecretStr | None = None
    # A queued batch a worker took and has not finished this long is taken by another.
    ingest_claim_seconds: float = Field(default=30.0, gt=0)
    # The web console's public base URL: one-time sign-in links point there, and its
    # cookies are Secure when it is https.
    console_url: AnyHttpUrl | None = None
    # Reverse proxies in front of the server (addresses or networks, comma-separated)
    # whose X-Forwarded-For names the client: sign-in limits are kept per client address.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not an address or a network "
                                     "(e.g. 10.0.0.5 or 10.0.0.0/8)") from None
        return value

    @property
    def proxies(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Return the trusted proxies' networks."""
        return tuple(ipaddress.ip_network(part.strip(), strict=False)
                     for part in self.trusted_proxies.split(",") if part.strip())

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        backend, _, driver = scheme.replace("postgres+", "postgresql+").partition("+")
        backend = "postgresql" if backend == "postgres" else backend
        runs_on = ("socialcare runs on PostgreSQL (postgresql://user:password@host:5432/name) "
                   "or SQLite (sqlite:///path/to/file.db)")
        if not scheme:
            raise ValueError(f"not a database URL: {runs_on}")
        if backend not in _DATABASES:
            raise ValueError(f"{scheme[:20]} is not supported: {runs_on}")
        if driver and driver not in _DATABASES[backend]:
            raise ValueError(f"the driver {driver!r} is not supported: write "
                             f"{backend}://… (socialcare uses {_DATABASES[backend][0]})")
        if backend == "sqlite" and url.split("://", 1)[1][:1] in ("", "/"):
            # No host, user or port: SQLAlchemy reads any such URL (checked without
            # importing it, which would be most of `socialcare cases`'s start).
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError) as error:
            raise ValueError(f"not a valid URL ({error})") from None
        return url

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError("give redis://host:6379/0 (or rediss://, unix://); leave it "
                             "unset for the in-process stand-in")
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as error:
            raise ValueError(f"not a valid URL ({error})") from None
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("the URL names no host: give redis://host:6379/0")
        return url

    @property
    def async_database_url(self) -> str:
        """Return the database URL with an async driver, whichever form was given."""
        url = self.database_url
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain):]
        return url


def environment(env_file: Path = Path(".env")) -> dict[str, str]:
    """The environment over `.env`: where the secrets that sources' options name are read."""
    values = dotenv_values(env_file) if env_file.is_file() else {}
    return {k: v for k, v in values.items() if v is not None} | dict(os.environ)


def load_settings() -> Settings:
    """Read the environment, or raise ConfigError naming each wrong variable."""
    settings, problems, _wrong = read_settings()
    if problems:
        raise ConfigError(*problems)
    return settings


def read_settings() -> tuple[Settings, list[str], set[str]]:
    """Read the environment as far as it is right: the settings with each wrong variable
    at its default, a line for each problem, and the wrong variables' field names."""
    try:
        return Settings(), [], set()
    except ValidationError as error:
        problems = [f"environment: {'.'.join(map(str, e['loc'])).upper()}: "
                    f"{str(e['msg']).removeprefix('Value error, ')}" for e in error.errors()]
        wrong = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
        defaults = {name: Settings.model_fields[name].default for name in wrong
                    if name in Settings.model_fields}
        return Settings(**defaults), problems, wrong


def load_team(path: Path, *, enabled_only: bool = True, check_sources: bool = True) -> Team:
    """Read and check the TOML config file, or raise ConfigError naming the key; the
    disabled sources are left out unless `enabled_only` is false.

    `check_sources=False` leaves the sources' options unchecked (and the collectors'
    libraries unloaded): for commands that only read cases."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (set CONFIG_FILE, or copy config.example.toml there)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    _refuse_secrets(path, raw)
    try:
        team = TypeAdapter(Team).validate_python(raw)
    except ValidationError as error:
        # An unknown key is most often a misspelt one, which also shows as "missing":
        # name the misspelling first.
        first = min(error.errors(), key=lambda e: e["type"] != "unexpected_keyword_argument")
        extra = error.error_count() - 1
        more = f" (and {extra} more problem(s))" if extra else ""
        key = _key(first["loc"], raw)
        where = f"{path}: {key}: " if key else f"{path}: "
        raise ConfigError(f"{where}{_problem(first)}{more}") from None
    if team.language not in languages():
        raise ConfigError(
            f"{path}: language: no catalog {team.language!r} (available: "
            f"{', '.join(sorted(languages()))}; a translator adds locales/<code>.toml)"
        )
    if check_sources:
        _check_sources(path, team)
    team = replace(team, saved_replies=tuple(_with_image(path, r) for r in team.saved_replies))
    if not enabled_only:
        return team
    return replace(team, sources=tuple(s for s in team.sources if s.enabled))


def _with_image(path: Path, saved: SavedReply) -> SavedReply:
    """Resolve a saved reply's picture next to the config, and check it is one."""
    if saved.image is None:
        return saved
    image = (path.parent / saved.image).resolve()
    try:
        with image.open("rb") as file:
            head = file.read(16)
        size = image.stat().st_size
    except OSError:
        raise ConfigError(f"{path}: saved_replies: {saved.title!r}: image {saved.image!r} "
                          f"cannot be read (it is looked for next to the config)") from None
    if sniff(head) is None:
        raise ConfigError(f"{path}: saved_replies: {saved.title!r}: {saved.image!r} is not "
                          "a PNG, JPEG, GIF or WebP picture")
    if size > MAX_SAVED_IMAGE:
        raise ConfigError(f"{path}: saved_replies: {saved.title!r}: {saved.image!r} is larger "
                          f"than {MAX_SAVED_IMAGE // (1024 * 1024)} MB")
    return replace(saved, image=str(image))


def _check_sources(path: Path, team: Team) -> None:
    from socialcare.adapters.collectors import kinds

    for i, source in enumerate(team.sources):
        try:
            kinds.check(source)
        except kinds.BadOptions as error:
            raise ConfigError(f"{path}: sources[{i}] ({source.name}).{error}") from None


def languages() -> set[str]:
    """Return the languages that have a message catalog."""
    return {entry.name.removesuffix(".toml") for entry in LOCALES.iterdir()
            if entry.name.endswith(".toml")}


def load_catalog(language: str) -> Catalog:
    """Return the message catalog of a language, with English for what it lacks."""
    english = _flatten(tomllib.loads((LOCALES / "en.toml").read_text(encoding="utf-8")))
    if language == "en":
        return Catalog("en", english)
    texts = _flatten(tomllib.loads((LOCALES / f"{language}.toml").read_text(encoding="utf-8")))
    return Catalog(language, texts, fallback=english)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _refuse_secrets(path: Path, raw: dict[str, Any]) -> None:
    for i, source in enumerate(raw.get("sources") or []):
        if not isinstance(source, dict):
            continue
        for name in (source.get("options") or {}):
            # `…_env` options name the environment variable that holds a secret.
            if str(name).endswith("_env"):
                continue
            if any(word in str(name).lower() for word in _SECRET_WORDS):
                raise ConfigError(
                    f"{path}: sources[{i}].options.{name}: secrets do not belong in the config "
                    f"file; put it in an environment variable and name that in {name}_env"
                )


def _key(loc: Sequence[int | str], raw: Any) -> str:
    """Render a validation location as the TOML key a person would look for."""
    key = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            label = None
            if _is_table(node, part):
                label = node[part].get("id") or node[part].get("name")
            key += f"[{part}]" + (f" ({label})" if isinstance(label, str) else "")
        else:
            key += ("." if key else "") + part
        node = node[part] if _has(node, part) else None
    return key


def _is_table(node: Any, index: int) -> bool:
    return isinstance(node, list) and index < len(node) and isinstance(node[index], dict)


def _has(node: Any, part: int | str) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and part < len(node)
    return isinstance(node, dict) and part in node


def _problem(error: Any) -> str:
    if error["type"] == "unexpected_keyword_argument":
        return "unknown key (check the spelling against config.example.toml)"
    if error["type"] == "missing_argument":
        return "missing"
    return str(error["msg"]).removeprefix("Value error, ")
