"""The demo's mentions arriving: each sample mention at its time, published a little
earlier, through the same path as a pushed mention (`collectors.take_in`)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import groupby

from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import IngestResult, Outcome
from socialcare.demo.sample import Arrival
from socialcare.deps import Deps
from socialcare.handlers import background, collectors

log = logging.getLogger(__name__)

# A collector's delay varies: each mention's lag is stretched or shrunk by up to this.
LAG_JITTER = 0.2


@dataclass
class Tally:
    """What became of the sample's mentions so far."""

    outcomes: dict[str, int] = field(default_factory=dict)
    arrived: int = 0

    def add(self, result: IngestResult) -> None:
        """Count one mention's outcome."""
        label = result.outcome.value if result.reason is None \
            else f"{result.outcome.value} ({result.reason.value})"
        self.outcomes[label] = self.outcomes.get(label, 0) + 1
        self.arrived += 1


async def feed(deps: Deps, arrivals: Sequence[Arrival], *, speed: float, rng: random.Random,
               stored: Callable[[Arrival, IngestResult], None] | None = None) -> Tally:
    """Deliver the sample at its pace (`speed` times faster); return what became of it.

    Mentions due at the same moment arrive as one delivery. `stored` hears of each
    mention that made or joined a case."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tally = Tally()
    published: dict[str, datetime] = {}  # by external id, to keep each thread in order
    for at, group in groupby(arrivals, key=lambda arrival: arrival.at):
        await asyncio.sleep(max(0.0, start + at / speed - loop.time()))
        batch = list(group)
        raws = [_published(arrival, deps.clock.now(), rng, published) for arrival in batch]
        try:
            results = await collectors.take_in(deps, raws)
        except Exception:
            background.stop_if_asked()
            log.exception("demo: %d sample mention(s) could not be stored; going on", len(raws))
            continue
        for arrival, result in zip(batch, results or [], strict=False):
            tally.add(result)
            if stored is not None and result.outcome is not Outcome.DROPPED:
                stored(arrival, result)
    return tally


def _published(arrival: Arrival, now: datetime, rng: random.Random,
               published: dict[str, datetime]) -> RawMention:
    """Date a sample mention `lag` (give or take) before now, and after what it answers:
    at a high --speed a follow-up's lag could otherwise put it before its thread."""
    mention = arrival.mention
    at = now - timedelta(seconds=arrival.lag * rng.uniform(1 - LAG_JITTER, 1 + LAG_JITTER))
    for earlier in (mention.parent_id, mention.thread_id):
        if earlier in published:
            at = min(now, max(at, published[earlier] + timedelta(seconds=1)))
    published[mention.external_id] = at
    return replace(mention, published_at=at)
