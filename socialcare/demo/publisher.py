"""Where the demo's replies go: nowhere but a list and the log.

Every demo source can publish, so the cards and the console offer **Reply**, and the
simulated agents answer the way a real team would — but nothing leaves the process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from socialcare.bot.model import Mention
from socialcare.bot.ports import Clock, Published
from socialcare.bot.team import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptReply:
    """A reply the demo 'published': on which source, to which mention, what, when."""

    source: str
    in_reply_to: str
    text: str
    at: datetime
    external_id: str


@dataclass
class KeepingPublisher:
    """Publish replies locally: keep them, log them, and give each an id of its own."""

    clock: Clock
    kept: list[KeptReply] = field(default_factory=list)

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Keep the reply to `to` as if the source had published it."""
        reply_id = f"demo-reply-{len(self.kept) + 1}"
        self.kept.append(KeptReply(source.name, to.external_id, text, self.clock.now(),
                                   reply_id))
        log.info("demo: reply on %s to %s kept locally (%d characters)", source.name,
                 to.external_id, len(text))
        return Published(external_id=reply_id)
