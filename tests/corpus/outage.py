"""A replayed outage among a normal day's traffic, for incident detection.

The normal day is the labelled corpus's brand mentions, spread over the day as a care
team sees them (quiet at night, busy by day). The outage is 200 mentions of mobile
internet being down in Almaty within 15 minutes, in Russian, Kazakh and English, the
city in its spellings and inflected forms, on several platforms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tests.corpus.labelled import load

# Mentions per hour of a normal day (local time), index = hour.
HOURLY = (1, 1, 0, 0, 1, 1, 2, 4, 8, 10, 10, 10, 9, 9, 10, 10, 9, 8, 8, 7, 6, 4, 3, 2)
PLATFORMS = ("instagram", "vk", "facebook", "x", "telegram", "youtube")
OUTAGE_SIZE = 200
OUTAGE_MINUTES = 15

_OUTAGE = (
    "Kcell, в {ru} нет мобильного интернета уже {n} минут",
    "Кселл, интернет в {ru} не работает!!! {n}",
    "@kcell_kz что с интернетом в {ru}? 4G пропал ({n})",
    "Кселл, у нас в {ru} пропал LTE, {n} мин без связи с миром",
    "{kk} Кселл ғаламтор істемейді, {n} минут болды",
    "Kcell {kk} мобильді интернет жоқ #{n}",
    "Кселлдің интернеті {kk} істемей тұр {n}",
    "Kcell mobile internet is down in {en} ({n})",
    "No mobile data on Kcell in {en} for {n} minutes",
    "Kcell internet not working in {en}, anyone else? #{n}",
    "Алматинцы, у вас тоже Kcell интернет отвалился? {n}",
)
_RU = ("Алматы", "Алмате", "Алма-Ате", "Алмаате")
_KK = ("Алматыда", "Алматыда", "Алматы қаласында")
_EN = ("Almaty", "Alma-Ata", "Almaty city")


@dataclass(frozen=True)
class Slot:
    """The mentions that arrive within one quarter of an hour."""

    at: datetime  # when they are ingested (the slot's end)
    mentions: list[dict[str, Any]]


def _mention(external_id: str, text: str, published: datetime, platform: str,
             source: str = "webhook") -> dict[str, Any]:
    return {"source": source, "external_id": external_id, "text": text,
            "published_at": published.isoformat(), "platform": platform,
            "author": {"id": external_id, "handle": f"@{external_id}"}}


def normal_day(start: datetime, *, tag: str) -> Iterator[Slot]:
    """Yield a normal day's mentions from `start` (local midnight) in quarter hours."""
    rows = [r for r in load() if r.brand is not None]
    i = 0
    for quarter in range(96):
        per_hour = HOURLY[quarter // 4]
        count = per_hour // 4 + (1 if quarter % 4 < per_hour % 4 else 0)
        at = start + timedelta(minutes=15 * (quarter + 1))
        mentions = []
        for k in range(count):
            row = rows[i % len(rows)]
            i += 1
            published = at - timedelta(minutes=14 - 3 * k % 14)
            mentions.append(_mention(f"{tag}-n{quarter}-{k}", row.text, published,
                                     PLATFORMS[i % len(PLATFORMS)]))
        yield Slot(at, mentions)


def outage(start: datetime, *, minutes_per_slot: int = 1,
           size: int = OUTAGE_SIZE) -> Iterator[Slot]:
    """Yield the outage's mentions (200 unless `size` says) from `start`, a slot every
    minute."""
    slots = OUTAGE_MINUTES // minutes_per_slot
    for s in range(slots):
        at = start + timedelta(minutes=minutes_per_slot * (s + 1))
        mentions = []
        for n in range(s * size // slots, (s + 1) * size // slots):
            template = _OUTAGE[n % len(_OUTAGE)]
            text = template.format(ru=_RU[n % len(_RU)], kk=_KK[n % len(_KK)],
                                   en=_EN[n % len(_EN)], n=n + 1)
            source = "forums" if n % 5 == 4 else "webhook"
            mentions.append(_mention(f"o-{n}", text, at - timedelta(seconds=30),
                                     PLATFORMS[n % len(PLATFORMS)], source))
        yield Slot(at, mentions)
