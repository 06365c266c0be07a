"""What start-up checks before it builds anything — and `socialcare check-config` with
it: every problem of the environment and the config file together, one line each; then
whether the database and Redis answer.

A new start-up check belongs in `problems`, so that check-config finds whatever
`socialcare run` would refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from socialcare.bot.team import Team
from socialcare.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

# How long the database or Redis may take to answer at start before it counts as down.
CONNECT_SECONDS = 10.0


class Unreachable(Exception):
    """The database or Redis did not answer at start; the message names which and why."""


def problems(settings: Settings, team: Team, *, environ: Mapping[str, str]) -> list[str]:
    """Return every problem of the environment and the config file together."""
    from socialcare.adapters.collectors import kinds
    from socialcare.adapters.collectors.webhook_reply import can_publish

    found = []
    if (settings.slack_bot_token is not None and settings.slack_app_token is None
            and settings.slack_signing_secret is None):
        found.append("environment: SLACK_SIGNING_SECRET is needed for Slack over HTTP "
                     "(or set SLACK_APP_TOKEN for Socket Mode)")
    if (settings.telegram_bot_token is not None and settings.telegram_webhook_url is not None
            and settings.telegram_webhook_secret is None):
        found.append("environment: TELEGRAM_WEBHOOK_SECRET is needed with TELEGRAM_WEBHOOK_URL "
                     "(1-256 characters: A-Z a-z 0-9 _ -)")
    publishing = [source.name for source in team.sources if can_publish(source)]
    if publishing and settings.ingest_webhook_secret is None:
        found.append(f"environment: INGEST_WEBHOOK_SECRET is needed to sign replies to source "
                     f"{publishing[0]!r} (it has a reply_url)")
    with_webhook = [t.name for t in team.second_line if t.webhook_url]
    if with_webhook and settings.handoff_webhook_secret is None:
        found.append(f"environment: HANDOFF_WEBHOOK_SECRET is needed to sign hand-offs to "
                     f"second-line team {with_webhook[0]!r} (it has a webhook_url)")
    found += _announcement_problems(settings, team)
    found += kinds.problems(team, environ, telegram_bot=settings.telegram_bot_token is not None)
    return found


def _announcement_problems(settings: Settings, team: Team) -> list[str]:
    from socialcare.adapters.mail import BadSmtpUrl, SmtpMailer

    found = []
    mailed = [a.name for a in team.audiences if a.emails]
    if mailed and (settings.smtp_url is None or not settings.smtp_from):
        found.append(f"environment: SMTP_URL and SMTP_FROM are needed to mail audience "
                     f"{mailed[0]!r} (it has emails)")
    if settings.smtp_url is not None:
        try:
            SmtpMailer(settings.smtp_url.get_secret_value(), settings.smtp_from or "")
        except BadSmtpUrl as error:
            found.append(f"environment: {error}")
    hooked = [a.name for a in team.audiences if a.webhook_url]
    if hooked and settings.announcement_webhook_secret is None:
        found.append(f"environment: ANNOUNCEMENT_WEBHOOK_SECRET is needed to sign "
                     f"announcements to audience {hooked[0]!r} (it has a webhook_url)")
    return found


async def unreachable(settings: Settings, *, skip: Collection[str] = ()) -> list[str]:
    """Try the database and Redis (but those whose settings are in `skip`: they are
    known to be wrong); return a line for each that does not answer."""
    checks = []
    if "database_url" not in skip:
        checks.append(_database(settings))
    if "redis_url" not in skip:
        checks.append(_redis(settings))
    found = await asyncio.gather(*checks)
    return [line for line in found if line is not None]


async def _database(settings: Settings) -> str | None:
    from sqlalchemy.exc import DBAPIError

    from socialcare.storage.engine import check_schema, create_engine, ping
    from socialcare.storage.revisions import UnknownSchema

    engine = create_engine(settings.async_database_url)
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            await ping(engine)
            await check_schema(engine)
    except (OSError, DBAPIError, TimeoutError) as error:
        return database_unreachable(settings, error)
    except UnknownSchema as error:
        return f"DATABASE_URL: {error}"
    finally:
        await engine.dispose()
    return None


async def _redis(settings: Settings) -> str | None:
    if settings.redis_url is None:
        return None
    from socialcare.storage import redis as redis_store

    redis = redis_store.connect(settings.redis_url)
    try:
        await check_redis(redis, settings.redis_url)
    except Unreachable as error:
        return str(error)
    finally:
        await redis.aclose()
    return None


async def check_redis(redis: Redis[Any], url: str) -> None:
    """Raise Unreachable naming the host unless the Redis at `url` answers a PING."""
    from redis.exceptions import RedisError

    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            await redis.ping()
    except (OSError, RedisError, TimeoutError) as error:
        reason = str(error) or f"no answer within {CONNECT_SECONDS:.0f} s"
        raise Unreachable(f"REDIS_URL: cannot reach Redis at {redacted_redis(url)}: "
                          f"{reason}") from None


def database_unreachable(settings: Settings, error: BaseException) -> str:
    """Return the line that says the database did not answer, without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    reason = error.orig if isinstance(error, DBAPIError) else error
    where = make_url(settings.async_database_url).render_as_string(hide_password=True)
    said = str(reason) or f"no answer within {CONNECT_SECONDS:.0f} s"
    return f"DATABASE_URL: cannot reach the database at {where}: {said}"


def redacted_redis(url: str) -> str:
    """Return a Redis URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}{host}{port}").geturl()
