"""The ingest pipeline: raw mentions become cases, follow-ups and answers.

    RawMention → read (brand, language, topics, places) → normalise → dedupe
               → thread attach → brand → priority → SLA due
               → case + mention + event, stored in one transaction

A mention that continues the thread of a known case joins that case — as a customer
message, or as an answer when one of the brand's own accounts wrote it — without
having to name the brand again. Everything else must name a brand to become a case.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from socialcare.bot import lifecycle, sla
from socialcare.bot.errors import ConcurrentUpdate, DuplicateMention
from socialcare.bot.model import (
    Author,
    Card,
    Case,
    Event,
    EventKind,
    Mention,
    Priority,
    RawMention,
    Tier,
)
from socialcare.bot.ports import Clock, UnitOfWork
from socialcare.bot.team import Team
from socialcare.bot.text import CONTROL
from socialcare.bot.understanding.matcher import Matcher
from socialcare.bot.understanding.model import Reading

# Control characters (NUL among them, which PostgreSQL cannot store) are dropped from
# everything a mention brings, ids included, before it is compared with what is stored:
# `a\0b` and `ab` are one id, on every back end and by every route.
log = logging.getLogger(__name__)
_CONTROL = CONTROL
_ATTEMPTS = 5
# A review of this many stars or fewer is urgent.
URGENT_RATING = 2
# Publication times outside this range are no times at all: "0001-01-01" is a missing
# date, "9999-12-31" a placeholder, and neither fits a timestamp column.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)
# The longest id, thread or parent id kept (POST /ingest refuses longer ones with a 400;
# a polled one is dropped with a reason, the rest of its poll stored).
MAX_ID = 256
# Author fields a source may send too long are cut to what the store keeps.
_AUTHOR_LIMITS = {"id": 256, "name": 512, "handle": 256}
MAX_PLATFORM = 64
READ_SLICE = 16


class Outcome(StrEnum):
    """What became of one mention."""

    CREATED = "created"  # a new case
    JOINED = "joined"  # a follow-up or an answer on an existing case
    DROPPED = "dropped"  # not stored; the reason says why


class DropReason(StrEnum):
    """Why a mention was not stored."""

    DUPLICATE = "duplicate"
    NO_BRAND = "no brand matched"
    OWN_ACCOUNT = "own account outside a case thread"
    EMPTY = "empty text"
    BAD_ID = "an id empty or over 256 characters"


@dataclass(frozen=True)
class IngestResult:
    """The outcome for one mention, in the order the mentions were given."""

    outcome: Outcome
    case_id: int | None = None
    reason: DropReason | None = None
    role: str | None = None  # "customer" or "agent" for joined mentions


@dataclass
class _Step:
    """One mention on its way through a batch."""

    mention: Mention
    rating: int | None = None
    case: Case | None = None
    new: bool = False
    drop: DropReason | None = None

    def result(self) -> IngestResult:
        if self.case is None:
            return IngestResult(Outcome.DROPPED, reason=self.drop)
        if self.new:
            return IngestResult(Outcome.CREATED, case_id=self.case.id)
        role = "agent" if self.mention.from_brand else "customer"
        return IngestResult(Outcome.JOINED, case_id=self.case.id, role=role)


class UnknownSource(ValueError):
    """A mention names a source that is not in the config."""


class Pipeline:
    """Turn raw mentions into stored cases, one transaction per batch."""

    def __init__(self, team: Team, *, clock: Clock, matcher: Matcher | None = None) -> None:
        self._team = team
        self._clock = clock
        self._matcher = matcher or matcher_for(team)

    async def ingest(self, raws: Sequence[RawMention], *, uow: UnitOfWork) -> list[IngestResult]:
        """Store a batch of mentions and return what became of each.

        The batch is one transaction. If another worker stored one of these mentions
        or changed one of these cases meanwhile, the batch is read again and retried:
        the repeat then shows up as a duplicate, never as a second case.
        """
        for raw in raws:
            if self._team.source(raw.source) is None:
                raise UnknownSource(f"unknown source {raw.source!r}")
        # Reading is CPU work (some 30-100 µs a mention): it runs as a task of this loop,
        # in slices, while the transaction waits for the database's first answers.
        reading = asyncio.ensure_future(self._read(raws))
        try:
            for attempt in range(_ATTEMPTS):
                try:
                    return await self._ingest_once(raws, uow, reading)
                except (ConcurrentUpdate, DuplicateMention):
                    if attempt == _ATTEMPTS - 1:
                        raise
        finally:
            reading.cancel()
        raise AssertionError("unreachable")

    async def _read(self, raws: Sequence[RawMention]) -> dict[str, Reading]:
        """Read every text of the batch once, giving the event loop its turn between
        slices of `READ_SLICE` mentions.

        Reading takes some 30-100 µs a mention (benchmarks.understanding), so a slice
        holds the loop 0.5-1.6 ms. In a worker thread it would hold the GIL (lingua keeps
        it) against the database driver's thread and slow every query of the batch.
        """
        readings: dict[str, Reading] = {}
        for n, raw in enumerate(raws):
            text = clean_text(raw.text)
            if text and text not in readings:
                # A source of one brand (its shops' reviews) makes cases of texts that
                # name no brand: their language is needed all the same.
                source = self._team.source(raw.source)
                branded = source is not None and source.brand is not None
                readings[text] = self._matcher.read(text, language=True if branded else None)
            if n % READ_SLICE == READ_SLICE - 1:
                await asyncio.sleep(0)
        return readings

    async def _ingest_once(
        self, raws: Sequence[RawMention], uow: UnitOfWork,
        reading: asyncio.Future[dict[str, Reading]],
    ) -> list[IngestResult]:
        now = self._clock.now()
        steps = [_Step(self._normalise(raw, now), rating=raw.rating) for raw in raws]
        for step in steps:
            if not _ids_fit(step.mention):
                step.drop = DropReason.BAD_ID
                log.warning("source %s: dropped a mention whose id is empty or too long "
                            "(%.40r…)", step.mention.source, step.mention.external_id)
        kept = [s for s in steps if s.drop is None]
        async with uow:
            keys = {(s.mention.source, s.mention.external_id) for s in kept}
            refs = {(s.mention.source, ref) for s in kept for ref in _refs(s.mention)}
            # Every thread a mention is in or names is held: a concurrent batch with a
            # mention of the same thread waits, then finds this one's case.
            await uow.mentions.reserve(keys, threads=refs)
            seen = await uow.mentions.existing(keys)
            threads = await self._known_threads(uow, [s.mention for s in kept])
            readings = await asyncio.shield(reading)
            created: list[Case] = []
            for step in kept:
                self._classify(step, seen, threads, now, readings)
                if step.case is None:
                    continue
                if step.new:
                    created.append(step.case)
                # Later mentions of this batch may continue this one's thread.
                m = step.mention
                for ref in {m.external_id, m.thread_key}:
                    threads[(m.source, ref)] = (step.case, m.thread_key)
            await uow.cases.add(created)
            events: list[Event] = []
            changed: dict[int, Case] = {}
            for step in steps:
                if step.case is None:
                    continue
                assert step.case.id is not None
                step.mention.case_id = step.case.id
                if step.new:
                    events.append(created_event(step.case, step.mention, self._team))
                else:
                    events += self._follow_up(step.case, step.mention)
                    changed[step.case.id] = step.case
            await uow.mentions.add([s.mention for s in steps if s.case is not None])
            for case in changed.values():
                await uow.cases.save(case)
            await uow.cards.add([card for case in created for card in self._cards(case, now)])
            await uow.cards.mark_changed(list(changed.values()), at=now)
            await uow.events.add(events)
            await uow.commit()
        return [step.result() for step in steps]

    def _classify(
        self,
        step: _Step,
        seen: set[tuple[str, str]],
        threads: dict[tuple[str, str], tuple[Case, str]],
        now: datetime,
        readings: dict[str, Reading],
    ) -> None:
        mention = step.mention
        key = (mention.source, mention.external_id)
        if key in seen:
            step.drop = DropReason.DUPLICATE
            return
        seen.add(key)
        mention.from_brand = self._matcher.own_account(mention.platform, mention.author) is not None
        for ref in (mention.thread_key, mention.parent_id):
            if ref and ref != mention.external_id and (mention.source, ref) in threads:
                step.case, mention.thread_key = threads[(mention.source, ref)]
                return
        if (mention.source, mention.external_id) in threads:
            # A reply to this mention came first and took its id as its thread: this
            # mention joins that case and keeps its own thread key.
            step.case, _ = threads[(mention.source, mention.external_id)]
            return
        if not mention.text:
            step.drop = DropReason.EMPTY
        elif mention.from_brand:
            step.drop = DropReason.OWN_ACCOUNT
        elif (brand := self._brand_of(mention, readings[mention.text])) is None:
            step.drop = DropReason.NO_BRAND
        else:
            step.case = self._open_case(mention, brand, readings[mention.text], now,
                                        rating=step.rating)
            step.new = True

    def _brand_of(self, mention: Mention, reading: Reading) -> str | None:
        """Return the brand a mention is about: its source's, if the source names one
        (its own shops' reviews, its own videos' comments), else the one its text names."""
        source = self._team.source(mention.source)
        if source is not None and source.brand is not None:
            return source.brand
        return reading.brand.name if reading.brand is not None else None

    async def _known_threads(
        self, uow: UnitOfWork, mentions: Sequence[Mention]
    ) -> dict[tuple[str, str], tuple[Case, str]]:
        wanted: dict[str, set[str]] = {}
        for m in mentions:
            wanted.setdefault(m.source, set()).update(_refs(m))
        refs_found: dict[tuple[str, str], tuple[int, str]] = {}
        for source, refs in wanted.items():
            for ref, thread in (await uow.mentions.threads(source, refs)).items():
                refs_found[(source, ref)] = thread
        cases = await uow.cases.get_many({case_id for case_id, _ in refs_found.values()})
        return {
            ref: (cases[case_id], thread_key)
            for ref, (case_id, thread_key) in refs_found.items()
            if case_id in cases
        }

    def _normalise(self, raw: RawMention, now: datetime) -> Mention:
        source = self._team.source(raw.source)
        assert source is not None
        return normalise(raw, now, default_platform=source.platform)

    def _cards(self, case: Case, now: datetime) -> list[Card]:
        assert case.id is not None
        return [
            Card(case_id=case.id, messenger=channel.messenger, channel=channel.id, due_at=now,
                 deadline=case.response_due_at)
            for channel in self._team.channels_for(
                brand=case.brand, tier=case.tier, platform=case.platform
            )
        ]

    def _policy(self, tier: Tier) -> sla.SlaPolicy:
        return self._team.sla.for_tier(tier)

    def _open_case(self, mention: Mention, brand: str, reading: Reading, now: datetime, *,
                   rating: int | None = None) -> Case:
        source = self._team.source(mention.source)
        assert source is not None
        policy = self._policy(source.tier)
        case = Case(
            brand=brand,
            source=source.name,
            platform=mention.platform,
            tier=source.tier,
            priority=self._priority(source.tier, reading, rating),
            thread_key=mention.thread_key,
            published_at=mention.published_at,
            collected_at=now,
            language=reading.language.value if reading.language else None,
            topics=reading.topics,
            places=reading.places,
        )
        if policy.resolution is not None:
            case.resolve_due_at = mention.published_at + policy.resolution
        sla.start_response_clock(case, mention.published_at, policy, first=True)
        return case

    def _priority(self, tier: Tier, reading: Reading, rating: int | None = None) -> Priority:
        if rating is not None and rating <= URGENT_RATING:
            return Priority.URGENT
        if reading.urgent:
            return Priority.URGENT
        return Priority.HIGH if tier is Tier.MAIN else Priority.NORMAL

    def _follow_up(self, case: Case, mention: Mention) -> list[Event]:
        policy = self._policy(case.tier)
        details = {"mention": mention.external_id, "url": mention.url}
        if mention.from_brand:
            if case.state not in lifecycle.ALLOWED["answered"]:
                # The brand wrote again on a closed case: keep it as a message only.
                return []
            actor = f"brand:{mention.author.handle or mention.author.id}"
            return [lifecycle.answer(
                case, by=actor, at=mention.published_at, policy=policy, claims=False,
                **details,
            )]
        author = mention.author.handle or mention.author.name or mention.author.id
        return lifecycle.add_customer_message(
            case, by=f"customer:{author}", at=mention.published_at, policy=policy, **details,
        )


def created_event(case: Case, mention: Mention, team: Team) -> Event:
    """Return the event that records a new case: the facts its figures start from."""
    assert case.id is not None
    policy = team.sla.for_tier(case.tier)
    return Event(
        case_id=case.id,
        kind=EventKind.CREATED,
        actor=f"source:{case.source}",
        at=case.collected_at,
        data={
            "published_at": case.published_at.isoformat(),
            "collected_at": case.collected_at.isoformat(),
            "lag_seconds": round(case.collector_lag_seconds, 3),
            "tier": case.tier.value,
            "platform": case.platform,
            "brand": case.brand,
            "source": case.source,
            "priority": case.priority.value,
            "response_due_at": (case.published_at + policy.first_response).isoformat(),
            "mention": mention.external_id,
            "language": case.language,
            "topics": list(case.topics),
            "places": list(case.places),
        },
    )


def implausible_time(at: datetime, now: datetime) -> str | None:
    """Say why a publication time cannot be true (before 2000, over a day ahead), or None."""
    if at.tzinfo is None:
        return "needs a timezone offset"
    if at < EARLIEST or at > now + AHEAD:
        return (f"{at.isoformat()} is out of range: expected a time from "
                f"{EARLIEST.date().isoformat()} to a day from now")
    return None


def clean(value: str) -> str:
    """Drop control characters (NUL among them) and the spaces around a piece of text."""
    return _CONTROL.sub("", value).strip()


def matcher_for(team: Team) -> Matcher:
    """Return the matcher of a team's brands, urgent words, topics and places."""
    return Matcher(team.brands, urgent=team.urgent_keywords, topics=team.topics,
                   places=team.places)


def clean_text(text: str) -> str:
    """Return a mention's text as it is stored and read: NFC, no control characters."""
    return clean(unicodedata.normalize("NFC", text))


def normalise(raw: RawMention, now: datetime, *, default_platform: str) -> Mention:
    """Clean a raw mention: ids and text without control characters, a platform, a
    publication time that is neither in the future nor absurd."""
    if raw.published_at.tzinfo is None:
        raise ValueError("published_at needs a timezone offset")
    # A mention "published" in the future is a clock skew at the source, one published
    # in year 1 a missing date: either way our time is the best there is.
    published = now if implausible_time(raw.published_at, now) else min(raw.published_at, now)
    text = clean_text(raw.text)
    external_id = clean(raw.external_id)
    thread_id = _clean(raw.thread_id)
    parent_id = _clean(raw.parent_id)
    return Mention(
        source=raw.source,
        external_id=external_id,
        platform=(clean(raw.platform or "").lower() or default_platform)[:MAX_PLATFORM],
        text=text,
        published_at=published.astimezone(now.tzinfo),
        collected_at=now,
        # A reply known only by its parent is in its parent's thread: the parent's own
        # id until the parent is found (then the pipeline gives it the parent's key).
        thread_key=thread_id or parent_id or external_id,
        author=Author(
            id=_cut(_clean(raw.author.id), _AUTHOR_LIMITS["id"]),
            name=_cut(_clean(raw.author.name), _AUTHOR_LIMITS["name"]),
            handle=_cut(_clean(raw.author.handle), _AUTHOR_LIMITS["handle"]),
            url=_clean(raw.author.url),
        ),
        url=_clean(raw.url),
        parent_id=parent_id,
    )


def _refs(mention: Mention) -> set[str]:
    """Every thread reference of a mention: its thread, its parent, and its own id (the
    thread of replies to it)."""
    return {ref for ref in (mention.thread_key, mention.parent_id, mention.external_id) if ref}


def _clean(value: str | None) -> str | None:
    return None if value is None else clean(value) or None


def _ids_fit(mention: Mention) -> bool:
    """Tell whether the mention's ids are ones the store keeps (not empty, not too long)."""
    return bool(mention.external_id) and all(
        len(ref) <= MAX_ID for ref in (mention.external_id, mention.thread_key,
                                       mention.parent_id or ""))


def _cut(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]
