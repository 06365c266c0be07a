"""The source kinds: which options each takes, and the collectors built from them.

A kind is polled (rss, html, vk, youtube, x, tiktok, threads, google_reviews: asked for
what is new since a cursor), pushed (mapped, meta, webhook: they call us) or joined
(telegram: the bot is in the chats); a threads source with webhooks is polled and
pushed. Options are checked when the config loads; secrets are read from the environment
variables the options name (`…_env`) when the app starts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, HttpUrl, ValidationError
from telegram import Bot

from socialcare.adapters.collectors import (
    google_reviews,
    mapped,
    meta,
    pages,
    rss,
    telegram_groups,
    threads,
    threads_webhooks,
    tiktok,
    vk,
    x,
    youtube,
)
from socialcare.adapters.collectors.tokens import Keeping, TokenStore
from socialcare.bot.ports import Clock, Poller, Publisher
from socialcare.bot.team import Source, Team


class WebhookOptions(BaseModel):
    """The generic signed webhook (`POST /ingest`): optionally, where replies go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reply_url: HttpUrl | None = None
    # False: the listening platform publishes text only (a picture is left out, and the
    # reply form says so before sending).
    pictures: bool = True


OPTIONS: dict[str, type[BaseModel]] = {
    "webhook": WebhookOptions,
    "mapped": mapped.Options,
    "rss": rss.Options,
    "vk": vk.Options,
    "youtube": youtube.Options,
    "x": x.Options,
    "meta": meta.Options,
    "telegram": telegram_groups.Options,
    "tiktok": tiktok.Options,
    "google_reviews": google_reviews.Options,
    "threads": threads.Options,
    "html": pages.Options,
}
POLLED = frozenset({"rss", "html", "vk", "youtube", "x", "tiktok", "google_reviews", "threads"})
# Kinds whose access tokens are renewed, and kept in the database when they are.
RENEWS_TOKENS = frozenset({"tiktok", "google_reviews", "threads"})
# The options of each kind that name an environment variable holding a secret, and
# whether the source needs it (without an optional one it only cannot reply, or renew).
SECRETS: dict[str, tuple[tuple[str, bool], ...]] = {
    "vk": (("token_env", True), ("reply_token_env", False), ("photo_token_env", False)),
    "youtube": (("key_env", True), ("oauth_token_env", False)),
    "x": (("bearer_env", True), ("user_token_env", False)),
    "tiktok": (("access_token_env", True), ("refresh_token_env", False),
               ("app_secret_env", False)),
    "google_reviews": (("client_secret_env", True), ("refresh_token_env", True)),
    "threads": (("token_env", True), ("app_secret_env", False), ("verify_token_env", False)),
    "mapped": (("secret_env", True),),
    "meta": (("app_secret_env", True), ("verify_token_env", True), ("page_token_env", False)),
}
_NEEDS_TELEGRAM = ("environment: TELEGRAM_BOT_TOKEN is not set (source {name!r} of kind "
                   "telegram reads the chats the bot is in)")


class BadOptions(ValueError):
    """A source's options are wrong; `key` is the option (dotted) and the message why."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key


class MissingSecret(ValueError):
    """An environment variable that a source's options name is not set."""


def check(source: Source) -> BaseModel:
    """Validate a source's kind and options; raise BadOptions naming the option."""
    model = OPTIONS.get(source.kind)
    if model is None:
        raise BadOptions("kind", f"unknown kind {source.kind!r} (known: "
                                 f"{', '.join(sorted(OPTIONS))})")
    try:
        return model.model_validate(dict(source.options))
    except ValidationError as error:
        first = error.errors()[0]
        key = "options." + ".".join(str(part) for part in first["loc"]) if first["loc"] \
            else "options"
        problem = ("unknown option (check the spelling against config.example.toml)"
                   if first["type"] == "extra_forbidden"
                   else str(first["msg"]).removeprefix("Value error, "))
        raise BadOptions(key, problem) from None


@dataclass
class Collectors:
    """What the app collects with, by source name."""

    pollers: dict[str, Poller] = field(default_factory=dict)
    publishers: dict[str, Publisher] = field(default_factory=dict)
    mapped: dict[str, mapped.MappedReceiver] = field(default_factory=dict)
    meta: dict[str, meta.MetaReceiver] = field(default_factory=dict)
    threads: dict[str, threads_webhooks.ThreadsWebhooks] = field(default_factory=dict)
    telegram: dict[str, telegram_groups.TelegramGroups] = field(default_factory=dict)

    def polled(self, source: Source) -> bool:
        """Tell whether socialcare asks this source (rather than being told by it)."""
        return source.name in self.pollers


def build(
    team: Team,
    *,
    session: aiohttp.ClientSession,
    clock: Clock,
    environ: Mapping[str, str],
    telegram_bot: Bot | None,
    team_chats: Collection[str] = (),
    tokens: TokenStore | None = None,
) -> Collectors:
    """Build every source's collector; raise MissingSecret or ValueError naming the source.

    Renewed access tokens are kept in `tokens` (the database), shared by every process;
    without it they live as long as the process."""
    collectors = Collectors()
    keywords = [k for brand in team.brands for k in brand.search_terms]
    for source in team.sources:
        options: Any = check(source)
        secret = _secrets(source, options, environ)
        made: Any = None
        keeping = Keeping(tokens, source.name) if tokens is not None else None
        if source.kind == "rss":
            made = rss.FeedCollector(session, options, clock=clock, zone=team.zone_of(source))
        elif source.kind == "html":
            made = pages.HtmlCollector(session, options, clock=clock, zone=team.zone_of(source))
        elif source.kind == "vk":
            made = vk.VkCollector(session, options, token=secret["token_env"] or "",
                                  reply_token=secret["reply_token_env"], queries=keywords,
                                  photo_token=secret["photo_token_env"])
        elif source.kind == "youtube":
            made = youtube.YoutubeCollector(
                session, options, key=secret["key_env"] or "", token=secret["oauth_token_env"],
                keywords=keywords, clock=clock)
        elif source.kind == "x":
            made = x.XCollector(session, options, bearer=secret["bearer_env"] or "",
                                user_token=secret["user_token_env"], keywords=keywords,
                                clock=clock)
        elif source.kind == "tiktok":
            made = tiktok.TikTokCollector(
                session, options, access_token=secret["access_token_env"] or "",
                refresh_token=secret["refresh_token_env"],
                app_secret=secret["app_secret_env"], clock=clock, keeping=keeping)
        elif source.kind == "google_reviews":
            made = google_reviews.ReviewsCollector(
                session, options, client_secret=secret["client_secret_env"] or "",
                refresh_token=secret["refresh_token_env"] or "", clock=clock,
                keeping=keeping)
        elif source.kind == "threads":
            made = threads.ThreadsCollector(session, options, token=secret["token_env"] or "",
                                            clock=clock, keeping=keeping)
            if options.app_secret_env is not None:
                collectors.threads[source.name] = threads_webhooks.ThreadsWebhooks(
                    user_id=options.user_id, app_secret=secret["app_secret_env"] or "",
                    verify_token=secret["verify_token_env"] or "")
        elif source.kind == "mapped":
            collectors.mapped[source.name] = mapped.MappedReceiver(
                options, secret["secret_env"] or "")
        elif source.kind == "meta":
            made = collectors.meta[source.name] = meta.MetaReceiver(
                session, options, app_secret=secret["app_secret_env"] or "",
                verify_token=secret["verify_token_env"] or "",
                page_token=secret["page_token_env"])
        elif source.kind == "telegram":
            if telegram_bot is None:
                raise ValueError(_NEEDS_TELEGRAM.format(name=source.name))
            made = collectors.telegram[source.name] = telegram_groups.TelegramGroups(
                telegram_bot, options, team_chats=team_chats)
        if source.kind in POLLED:
            collectors.pollers[source.name] = made
        if made is not None and made.can_publish:
            collectors.publishers[source.name] = made
    return collectors


def problems(team: Team, environ: Mapping[str, str], *, telegram_bot: bool) -> list[str]:
    """Return what would stop `build`: every missing secret, one line each."""
    found = []
    for source in team.sources:
        options = check(source)
        for option, required in SECRETS.get(source.kind, ()):
            try:
                _secret(source, options, option, environ, required=required)
            except MissingSecret as missing:
                found.append(str(missing))
        if source.kind == "telegram" and not telegram_bot:
            found.append(_NEEDS_TELEGRAM.format(name=source.name))
    return found


def _secrets(source: Source, options: Any, environ: Mapping[str, str]) -> dict[str, str | None]:
    return {option: _secret(source, options, option, environ, required=required)
            for option, required in SECRETS.get(source.kind, ())}


def _secret(source: Source, options: Any, option: str, environ: Mapping[str, str], *,
            required: bool) -> str | None:
    name = getattr(options, option)
    if name is None:
        return None
    value = environ.get(name, "").strip()
    if not value:
        hint = "" if required else "; or leave the option out to go without"
        raise MissingSecret(f"environment: {name} is not set (sources {source.name!r} "
                            f"options.{option} names it{hint})")
    return value
