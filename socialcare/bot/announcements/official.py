"""Which announcement answers a case: its keywords in the case's words, or its topics
among the case's topics.

`names_keywords` is the one place where announcements use the mention matcher: the
keywords are read in their word forms (Russian endings, Kazakh suffix chains), as brand
keywords are.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from socialcare.bot.announcements.model import Announcement
from socialcare.bot.understanding.matcher import Matcher
from socialcare.bot.understanding.model import Brand


@lru_cache(maxsize=256)
def _matcher(keywords: tuple[str, ...]) -> Matcher:
    return Matcher([Brand(name="announcement", keywords=keywords)], languages=False)


def names_keywords(keywords: Sequence[str], text: str) -> bool:
    """Tell whether the text names one of the keywords, as the mention matcher reads it."""
    wanted = tuple(k for k in keywords if k.strip())
    return bool(wanted) and _matcher(wanted).match(text) is not None


def shares_topic(topics: Collection[str], case_topics: Collection[str]) -> bool:
    """Tell whether the case is about one of the announcement's topics (by name)."""
    wanted = {t.casefold() for t in topics}
    return any(t.casefold() in wanted for t in case_topics)


def answers(announcement: Announcement, text: str, topics: Collection[str] = ()) -> bool:
    """Tell whether an announcement (in force or not) answers a case with these words
    and topics."""
    return names_keywords(announcement.keywords, text) or shares_topic(
        announcement.topics, topics)


@dataclass(frozen=True)
class OfficialAnswer:
    """The answer an announcement gives, as a card offers it."""

    announcement_id: int
    text: str


class OfficialAnswers:
    """The announcements in force that name keywords or topics, newest first."""

    def __init__(self, announcements: Sequence[Announcement], *, now: datetime) -> None:
        self._offered = sorted(
            (a for a in announcements if a.in_force(now) and (a.keywords or a.topics)),
            key=lambda a: a.created_at, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._offered)

    def for_case(self, text: str, topics: Collection[str] = ()) -> OfficialAnswer | None:
        """Return the newest announcement that answers a case with these words and
        topics, if any."""
        for announcement in self._offered:
            if answers(announcement, text, topics):
                assert announcement.id is not None
                return OfficialAnswer(announcement.id, announcement.text)
        return None
