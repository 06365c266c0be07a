"""e. Time to card: from a main-tier mention's publication to its card in Slack and in
Telegram, while 1,000 forum mentions arrive at once.

socialcare runs whole against fake Slack and Telegram that enforce the real rate
limits (see `benchmarks.fake_chat`), with the team's one Slack channel and one
Telegram group of config.example.toml. At the start one `POST /ingest` brings 1,000
forum (extra-tier) mentions; main-tier mentions then arrive one at a time, at a pace
the limits allow on their own (one every 4 s: 15 a minute, under Telegram's 20 a
minute per group). A main mention is published the moment it is sent; its card
counts when the fake messenger accepted the post (its call log).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from benchmarks import fake_chat, mentions, running, stores
from benchmarks.table import Figure, at_most, percentile

TARGET_SECONDS = 2.0
MAIN_EVERY_SECONDS = 4.0
POLL_SECONDS = 0.2
_PROBE = re.compile(r"probe(\d{4})z")


def _main_mention(n: int) -> dict[str, Any]:
    return mentions.mention(n, published=datetime.now(UTC), prefix="main",
                            text=f"Kcell, no 4G in Almaty since the morning, probe{n:04d}z")


def _posted(fakes: fake_chat.Fakes) -> dict[str, dict[int, float]]:
    """Return, per messenger, when each main mention's card was accepted (Unix time)."""
    found: dict[str, dict[int, float]] = {"slack": {}, "telegram": {}}
    if fakes.slack is not None:
        for call in fakes.slack.calls_to("chat.postMessage"):
            probe = _PROBE.search(str(call.params.get("blocks", "")))
            if call.ok and probe:
                found["slack"].setdefault(int(probe[1]), call.at.timestamp())
    if fakes.telegram is not None:
        for call in fakes.telegram.calls_to("sendMessage"):
            probe = _PROBE.search(str(call.params.get("text", "")))
            if call.ok and probe:
                found["telegram"].setdefault(int(probe[1]), call.at.timestamp())
    return found


def _cards_posted(fakes: fake_chat.Fakes) -> dict[str, int]:
    counts = {"slack": 0, "telegram": 0}
    if fakes.slack is not None:
        counts["slack"] = sum(1 for c in fakes.slack.calls_to("chat.postMessage") if c.ok)
    if fakes.telegram is not None:
        counts["telegram"] = sum(1 for c in fakes.telegram.calls_to("sendMessage") if c.ok)
    return counts


async def _one_run(*, forum: int, main: int, settle: float) -> dict[str, Any]:
    url, redis = stores.postgres_url(), stores.redis_url()
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    async with fake_chat.fakes() as fakes:
        config = running.settings(url, redis, port=running.free_port(),
                                  messengers=fakes.endpoints())
        async with running.serving(config) as app, aiohttp.ClientSession() as session:
            now = datetime.now(UTC)
            burst = [mentions.mention(n, published=now, source=mentions.FORUM_SOURCE,
                                      prefix="forum") for n in range(forum)]
            burst_sent = asyncio.create_task(running.post_ingest(session, app.url, burst))
            published: dict[int, float] = {}
            for n in range(main):
                next_at = time.monotonic() + MAIN_EVERY_SECONDS
                item = _main_mention(n)
                published[n] = datetime.fromisoformat(item["published_at"]).timestamp()
                await running.post_ingest(session, app.url, [item])
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await burst_sent
            for _ in range(int(settle / POLL_SECONDS)):
                if all(published.keys() <= cards.keys() for cards in _posted(fakes).values()):
                    break
                await asyncio.sleep(POLL_SECONDS)
            ended = time.time()
            posted = _posted(fakes)
            counts = _cards_posted(fakes)
    result: dict[str, Any] = {"cards_posted": counts}
    for messenger, cards in posted.items():
        waits = [cards.get(n, ended) - at for n, at in published.items()]
        result[messenger] = {"p50": percentile(waits, 50), "p99": percentile(waits, 99),
                             "max": max(waits), "unposted": len(published.keys() - cards)}
    return result


async def measure(*, forum: int, main: int, settle: float, runs: int,
                  log: Any = print) -> list[Figure]:
    """Measure main-tier time to card under a forum burst, `runs` times."""
    results = []
    for run in range(runs):
        result = await _one_run(forum=forum, main=main, settle=settle)
        results.append(result)
        log(f"  e. run {run + 1}/{runs}: " + "; ".join(
            f"{m} p50 {result[m]['p50']:.1f} s p99 {result[m]['p99']:.1f} s "
            f"(max {result[m]['max']:.1f} s, {result[m]['unposted']} unposted)"
            for m in ("slack", "telegram")) + f"; cards posted {result['cards_posted']}")
    figures = []
    for messenger, name in (("slack", "Slack"), ("telegram", "Telegram")):
        unposted = sum(r[messenger]["unposted"] for r in results)
        posted = sorted(r["cards_posted"][messenger] for r in results)
        note = (f"{forum:,} forum mentions at once, then {main} main-tier ones, one every "
                f"{MAIN_EVERY_SECONDS:g} s; {posted[0]}-{posted[-1]} cards posted per run; "
                f"max {max(r[messenger]['max'] for r in results):.1f} s")
        if unposted:
            note += (f"; {unposted} main card(s) not posted {settle:g} s after the last "
                     "mention, counted as posted then (a lower bound)")
        figures += [
            at_most(f"e. time to card p50, {name}", [r[messenger]["p50"] for r in results],
                    "s"),
            at_most(f"e. time to card p99, {name}", [r[messenger]["p99"] for r in results],
                    "s", TARGET_SECONDS, note=note, detail={"runs": results}),
        ]
    return figures
