"""Mentions for the benchmarks, in the JSON format of `POST /ingest`.

Each names a brand of config.example.toml, so each becomes a case; the texts vary
like a real stream (complaints, questions, an urgent word now and then).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from socialcare.adapters.collectors.mention_json import parse_body
from socialcare.bot.model import RawMention

# config.example.toml: "webhook" is a main-tier source, "forums" an extra-tier one.
MAIN_SOURCE = "webhook"
FORUM_SOURCE = "forums"
SOURCES = frozenset({MAIN_SOURCE, FORUM_SOURCE})

_TEXTS = (
    "Kcell, why is there no 4G in {city} again? Third day without internet. #{n}",
    "Кселл, верните деньги за роуминг, списали дважды! #{n}",
    "activ support is silent for two hours, who can help with my number? #{n}",
    "Kcell тарифы опять подняли, это мошенники или я чего-то не понимаю? #{n}",
    "Thanks Kcell for fixing the tower in {city} so quickly! #{n}",
    "Актив Казахстан, не работает связь в {city} с утра #{n}",
)
_CITIES = ("Almaty", "Astana", "Shymkent", "Karaganda", "Aktobe", "Taraz")
_PLATFORMS = ("instagram", "vk", "facebook", "youtube", "x", "telegram")


def mention(n: int, *, published: datetime, source: str = MAIN_SOURCE,
            prefix: str = "bench", text: str | None = None) -> dict[str, Any]:
    """Return mention number `n` as `POST /ingest` takes it."""
    external_id = f"{prefix}-{n}"
    body = text or _TEXTS[n % len(_TEXTS)].format(city=_CITIES[n % len(_CITIES)], n=n)
    platform = "forum" if source == FORUM_SOURCE else _PLATFORMS[n % len(_PLATFORMS)]
    return {
        "source": source, "external_id": external_id, "text": body,
        "published_at": published.isoformat(), "platform": platform,
        "url": f"https://example.org/{platform}/{external_id}",
        "author": {"id": str(10_000 + n % 997), "name": f"Customer {n % 997}",
                   "handle": f"@customer{n % 997}"},
    }


def raw_mentions(items: Sequence[dict[str, Any]]) -> list[RawMention]:
    """Parse mentions as `POST /ingest` does."""
    return parse_body(json.dumps(list(items)).encode(), sources=SOURCES, now=datetime.now(UTC))


def batches(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Split `items` into lists of at most `size`."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
