"""Raw mentions for tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from socialcare.bot.model import Author, RawMention
from tests.conftest import T0


def mention(
    external_id: str | int,
    text: str = "Kcell, why is there no 4G in Almaty again?",
    *,
    source: str = "webhook",
    published_at: datetime | None = None,
    minutes_ago: float = 0,
    author: Author | None = None,
    thread_id: str | None = None,
    parent_id: str | None = None,
    platform: str | None = None,
) -> RawMention:
    """Return a raw mention, published `minutes_ago` before T0 unless a time is given."""
    return RawMention(
        source=source,
        external_id=str(external_id),
        text=text,
        published_at=published_at or T0 - timedelta(minutes=minutes_ago),
        url=f"https://example.org/p/{external_id}",
        platform=platform,
        author=author or Author(id="42", name="Aigerim", handle="@aigerim_customer"),
        thread_id=thread_id,
        parent_id=parent_id,
    )


BRAND_REPLY = Author(id="9", name="Kcell", handle="@kcell_kz")
