"""`socialcare try-source NAME`: fetch a polled source once and print what it would collect.

Nothing is stored and no cursor moves: a team tunes an html source's selectors (or checks
a token) against the live site without waiting for a poll. A disabled source can be
tried too — that is how one is made ready to enable. The one thing kept is a renewed
access token (TikTok, Threads, Google reviews): it goes to the database the app uses, as
the app's own renewals do, since TikTok's old refresh token stops working once renewed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TextIO
from zoneinfo import ZoneInfo

import aiohttp

from socialcare.adapters.clock import SystemClock
from socialcare.adapters.collectors import kinds
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Team
from socialcare.storage.database import create_engine, upgrade
from socialcare.storage.tokens import SqlTokenStore

SHOWN = 300  # characters of each item's text


async def try_source(team: Team, name: str, *, environ: Mapping[str, str], out: TextIO,
                     err: TextIO, database_url: str | None = None) -> int:
    """Poll source `name` once from nothing and print its items; return the exit code.

    Sources whose tokens are renewed keep them in the database at `database_url`."""
    source = team.source(name)
    if source is None:
        known = ", ".join(s.name for s in team.sources if s.kind in kinds.POLLED) or "none"
        print(f"socialcare try-source: no source named {name!r} (polled sources: {known})",
              file=err)
        return 2
    if source.kind not in kinds.POLLED:
        print(f"socialcare try-source: {name} ({source.kind}) is not polled: it sends "
              "mentions to socialcare, there is nothing to fetch", file=err)
        return 2
    async with AsyncExitStack() as stack:
        tokens = None
        if source.kind in kinds.RENEWS_TOKENS and database_url is not None:
            engine = create_engine(database_url)
            stack.push_async_callback(engine.dispose)
            await upgrade(engine)
            tokens = SqlTokenStore(engine)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        try:
            built = kinds.build(replace(team, sources=(source,)), session=session,
                                clock=SystemClock(), environ=environ, telegram_bot=None,
                                tokens=tokens)
        except ValueError as error:
            print(f"socialcare try-source: {error}", file=err)
            return 2
        poller = built.pollers[source.name]
        preview = getattr(poller, "preview", None)
        try:
            polled: Polled = await (preview(source) if preview is not None
                                    else poller.poll(source, {}))
        except SourceUnavailable as failure:
            print(f"{source.name} ({source.kind}): failing: {failure}", file=out)
            return 1
    zone = ZoneInfo(team.zone_of(source))
    print(f"{source.name} ({source.kind}): {len(polled.mentions)} item(s)", file=out)
    for mention in polled.mentions:
        when = mention.published_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        who = mention.author.name or mention.author.handle or "?"
        thread = f" · thread {mention.thread_id}" if mention.thread_id else ""
        print(f"\n{when} · {who}{thread}", file=out)
        if mention.url:
            print(f"  {mention.url}", file=out)
        print(textwrap.indent(textwrap.shorten(mention.text, SHOWN, placeholder=" …"), "  "),
              file=out)
    if polled.note:
        print(f"\nnote: {polled.note}", file=out)
    return 0
