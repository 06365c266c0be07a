"""The RSS/Atom collector against the fake feed server, over real HTTP.

The broken-feed corpus is read as its manifest says; an unchanged feed costs a 304; the
cursor hands over each item once, across restarts too; the first poll leaves history
alone; size, network and server trouble end in SourceUnavailable with a reason. Polled
through `collecting.poll`, the source's cursor and health live in the real database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select

from socialcare.adapters.collectors.rss import MAX_FEED, SEEN, FeedCollector, Options
from socialcare.bot import collecting
from socialcare.bot.model import RawMention, Tier
from socialcare.bot.pipeline import DropReason, Pipeline
from socialcare.bot.sources import Alert, Polled, SourceState, SourceUnavailable
from socialcare.bot.team import Brand, Source, Team
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.schema import cases as cases_table
from socialcare.storage.schema import mentions as mentions_table
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.fakes.feeds import (
    HUGE_BRAND_LEADS,
    HUGE_FEED,
    CorpusFeed,
    ExpectedItem,
    FakeFeeds,
    FeedItem,
    huge_rss,
    load_corpus,
)

CORPUS = load_corpus()
READABLE = sorted(name for name, entry in CORPUS.items() if entry.items)
NOT_FEEDS = sorted(name for name, entry in CORPUS.items() if not entry.items)
# What the poll says of a body that is no feed at all, by the corpus's `kind`.
NOT_A_FEED = {"html": "an HTML page", "empty": "the answer is empty", "json": "JSON"}
# Hours of backfill that let a first poll return a corpus file whole, however old its items.
ALL_HISTORY = 24 * 365
LIVE = "mentions.xml"
FEED = Source(name="qala-forum", kind="rss", platform="forum", tier=Tier.EXTRA,
              poll_seconds=120)
# The corpus's brands, in the forms its Russian and Kazakh texts use.
BRANDS = (
    Brand(name="Kcell", keywords=("Kcell", "Кселл"), exclusions=("Kcell Arena",)),
    Brand(name="activ", keywords=("activ", "Актив", "Актива", "Активу", "Активом")),
)


@pytest.fixture
async def feeds(clock: FakeClock) -> AsyncIterator[FakeFeeds]:
    """Serve the corpus and live feeds; published items are stamped with the test's clock."""
    async with FakeFeeds(now=clock.now) as fake:
        fake.create_live(LIVE, title="Qala Forum — новые темы")
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def reader(http: aiohttp.ClientSession, url: str, clock: FakeClock, **options: int
           ) -> FeedCollector:
    """Return a collector of the feed at `url`."""
    return FeedCollector(http, Options.model_validate({"url": url, **options}), clock=clock)


def ids(polled: Polled) -> list[str]:
    return [mention.external_id for mention in polled.mentions]


def title_of(mention: RawMention) -> str:
    """The title a feed item's mention starts with (its body follows after a blank line)."""
    return mention.text.partition("\n\n")[0]


def feed_team(*sources: Source) -> Team:
    return make_team(brands=BRANDS, sources=sources or (FEED,))


async def state_of(storage: Storage, source: Source = FEED) -> SourceState:
    async with storage.uow() as uow:
        return await uow.sources.get(source.name)


async def poll(source: Source, collector: FeedCollector, *, storage: Storage, team: Team,
               clock: FakeClock) -> collecting.Collected:
    """Poll through the collecting service, as the app's scheduler does."""
    return await collecting.poll(source, collector, uow=storage.uow,
                                 pipeline=Pipeline(team, clock=clock), clock=clock)


# ---------------------------------------------------------------- the broken-feed corpus


def _found(polled: Polled, item: ExpectedItem, url: str) -> list[RawMention]:
    """The mentions a manifest item became: by guid, else resolved link, else title."""
    link = urljoin(url, item.link) if item.link else None
    if item.guid or link:
        return [m for m in polled.mentions if m.external_id == (item.guid or link)]
    return [m for m in polled.mentions if title_of(m) == item.title]


def _expected(item: ExpectedItem, url: str, clock: FakeClock) -> tuple[object, ...]:
    link = urljoin(url, item.link) if item.link else None
    return link, item.title, item.published or clock.now()


def _seen(mention: RawMention) -> tuple[object, ...]:
    return mention.url, title_of(mention), mention.published_at


@pytest.mark.parametrize("name", READABLE)
async def test_a_corpus_feed_yields_each_of_its_manifest_items_once_and_nothing_else(
    name: str, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    entry: CorpusFeed = CORPUS[name]
    url = feeds.url(name)

    polled = await reader(http, url, clock, backfill_hours=ALL_HISTORY).poll(FEED, {})

    for item in entry.items:
        [mention] = _found(polled, item, url)
        assert _seen(mention) == _expected(item, url, clock), item.title
    optional = 0
    for item in entry.optional_items:
        for mention in _found(polled, item, url):
            assert _seen(mention) == _expected(item, url, clock), item.title
            optional += 1
    assert len(polled.mentions) == len(entry.items) + optional
    assert len(set(ids(polled))) == len(polled.mentions)


@pytest.mark.parametrize("name", NOT_FEEDS)
async def test_a_body_that_is_no_feed_fails_the_poll_saying_what_it_is(
    name: str, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    with pytest.raises(SourceUnavailable) as failed:
        await reader(http, feeds.url(name), clock).poll(FEED, {})

    assert str(failed.value) == f"feed unreadable: not a feed: {NOT_A_FEED[CORPUS[name].kind]}"
    assert failed.value.retry_after is None


async def test_the_corpus_brand_items_become_cases_and_no_other_item_does(
    storage: Storage, feeds: FakeFeeds, clock: FakeClock
) -> None:
    sources = {name: Source(name=name, kind="rss", platform="news", tier=Tier.EXTRA)
               for name in READABLE}
    team = feed_team(*sources.values())
    async with aiohttp.ClientSession() as http:
        for name, source in sources.items():
            collector = reader(http, feeds.url(name), clock, backfill_hours=ALL_HISTORY)
            collected = await poll(source, collector, storage=storage, team=team, clock=clock)
            assert collected.error is None, name

    async with storage.engine.connect() as conn:
        rows = await conn.execute(
            select(mentions_table.c.source, mentions_table.c.text, cases_table.c.brand)
            .join(cases_table, cases_table.c.id == mentions_table.c.case_id))
        cases = {(source, text.partition("\n\n")[0]): brand for source, text, brand in rows}
    required = {(name, item.title): item.brands for name in READABLE
                for item in CORPUS[name].items if item.brands}
    optional = {(name, item.title): item.brands for name in READABLE
                for item in CORPUS[name].optional_items if item.brands}
    assert set(required) <= set(cases) <= set(required) | set(optional)
    brand_keys = {"Kcell": "kcell", "activ": "activ"}
    assert all(brand_keys[brand] in (required | optional)[key] for key, brand in cases.items())


# ---------------------------------------------------------------- conditional GET


async def test_an_unchanged_feed_is_asked_for_conditionally_and_its_304_keeps_the_cursor(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    name = "qalaforum-atom.xml"
    collector = reader(http, feeds.url(name), clock, backfill_hours=ALL_HISTORY)
    first = await collector.poll(FEED, {})

    second = await collector.poll(FEED, first.cursor)

    assert len(first.mentions) == 5
    assert (second.mentions, second.cursor, second.note) == ([], first.cursor, "not modified")
    plain, conditional = feeds.requests_to(name)
    assert (plain.status, plain.conditional) == (200, False)
    assert conditional.status == 304
    assert conditional.if_none_match == first.cursor["etag"]
    assert conditional.if_modified_since == first.cursor["modified"] == \
        "Wed, 25 Nov 2026 09:05:00 GMT"


async def test_a_feed_without_an_etag_is_asked_if_modified_since_its_last_modified(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    name = "zhanakun-rdf.xml"
    feeds.set_validators(name, etag=False)
    collector = reader(http, feeds.url(name), clock, backfill_hours=ALL_HISTORY)
    first = await collector.poll(FEED, {})

    second = await collector.poll(FEED, first.cursor)

    assert second.mentions == []
    conditional = feeds.requests_to(name)[-1]
    assert (conditional.status, conditional.if_none_match) == (304, None)
    assert conditional.if_modified_since == "Wed, 25 Nov 2026 09:05:00 GMT"


# ---------------------------------------------------------------- the seen-id cursor


async def test_only_the_items_published_since_the_last_poll_come_back(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    collector = reader(http, feeds.url(LIVE), clock)
    feeds.publish(LIVE, [FeedItem("Kcell: нет 4G в Алмалы", guid="t-2"),
                         FeedItem("Продам роутер", guid="t-1")])
    first = await collector.poll(FEED, {})
    clock.advance(minutes=5)
    feeds.publish(LIVE, [FeedItem("activ: сбой в Шымкенте?", guid="t-4"),
                         FeedItem("Где купить SIM?", guid="t-3")])

    second = await collector.poll(FEED, first.cursor)

    assert ids(first) == ["t-2", "t-1"]
    assert ids(second) == ["t-4", "t-3"]


async def test_an_item_listed_twice_in_the_feed_is_returned_once(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sticky = FeedItem("Правила раздела — читать всем", guid="rules")
    feeds.publish(LIVE, [sticky, FeedItem("Kcell не ловит в метро", guid="t-1"), sticky])

    polled = await reader(http, feeds.url(LIVE), clock).poll(FEED, {})

    assert ids(polled) == ["rules", "t-1"]


async def test_an_item_bumped_to_the_top_again_is_not_returned_again(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    collector = reader(http, feeds.url(LIVE), clock)
    bumped = FeedItem("Кселл: верните безлимит", guid="t-1", published=T0)
    feeds.publish(LIVE, [bumped])
    first = await collector.poll(FEED, {})
    clock.advance(minutes=5)
    feeds.publish(LIVE, [FeedItem("activ eSIM на iPhone?", guid="t-2"), bumped])

    second = await collector.poll(FEED, first.cursor)

    assert ids(second) == ["t-2"]


async def test_a_feed_longer_than_the_cursor_usually_remembers_hands_over_only_new_items(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.create_live("archive.xml", keep=SEEN + 500)
    feeds.publish("archive.xml", [
        FeedItem(f"Тема {n}", guid=f"t-{n}", published=T0 - timedelta(minutes=n))
        for n in range(SEEN + 400)
    ])
    collector = reader(http, feeds.url("archive.xml"), clock)
    first = await collector.poll(FEED, {})
    feeds.publish("archive.xml", [FeedItem("Kcell: новая тема", guid="new", published=T0)])

    second = await collector.poll(FEED, first.cursor)

    assert ids(second) == ["new"]


# ---------------------------------------------------------------- backfill


async def test_the_first_poll_returns_only_the_last_24_hours(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.publish(LIVE, [
        FeedItem("Kcell: сегодня без связи", guid="fresh",
                 published=T0 - timedelta(hours=23, minutes=59)),
        FeedItem("Kcell: вчера без связи", guid="history",
                 published=T0 - timedelta(hours=24, minutes=1)),
    ])

    polled = await reader(http, feeds.url(LIVE), clock).poll(FEED, {})

    assert ids(polled) == ["fresh"]


async def test_history_left_out_of_the_first_poll_is_not_returned_later_either(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    collector = reader(http, feeds.url(LIVE), clock, backfill_hours=2)
    feeds.publish(LIVE, [FeedItem("Кселл: старая тема", guid="history",
                                  published=T0 - timedelta(hours=3))])
    first = await collector.poll(FEED, {})
    clock.advance(minutes=5)
    feeds.publish(LIVE, [FeedItem("Кселл: новая тема", guid="new")])

    second = await collector.poll(FEED, first.cursor)

    assert (ids(first), ids(second)) == ([], ["new"])
    assert "history" in second.cursor["seen"]


async def test_after_the_first_poll_items_older_than_the_window_are_still_returned(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    collector = reader(http, feeds.url(LIVE), clock)
    first = await collector.poll(FEED, {})
    feeds.publish(LIVE, [FeedItem("Kcell: нет связи с утра", guid="during-outage",
                                  published=T0 + timedelta(hours=1))])
    clock.advance(hours=30)  # the collector was down meanwhile

    second = await collector.poll(FEED, first.cursor)

    assert ids(second) == ["during-outage"]


# ---------------------------------------------------------------- size


async def test_a_10_mb_feed_is_read_to_its_last_item(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    generated = huge_rss()

    polled = await reader(http, feeds.url(HUGE_FEED), clock,
                          backfill_hours=ALL_HISTORY).poll(FEED, {})

    assert polled.note is None
    assert ids(polled) == [item.guid for item in generated.items]
    assert [title_of(m) for m in polled.mentions[:4]] == [t for t, _ in HUGE_BRAND_LEADS]


async def test_a_feed_over_the_limit_is_read_up_to_it_with_a_note(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    generated = huge_rss(MAX_FEED + 200_000)
    feeds.serve("archive.xml", generated.body)
    whole_items_within_limit = generated.body[:MAX_FEED].count(b"</item>")

    collector = reader(http, feeds.url("archive.xml"), clock, backfill_hours=ALL_HISTORY)
    polled = await collector.poll(FEED, {})
    again = await collector.poll(FEED, polled.cursor)

    read = ids(polled)
    # The items past the limit are not lost silently: the note says they are not read.
    assert polled.note == (f"the feed is over 10 MB: read its first {len(read)} item(s); "
                           "the items after them are not read")
    # Unchanged, it is not fetched again (all 10 MB would only give the same part), and
    # the warning stays until the feed changes.
    assert again.note == f"{polled.note} (not modified since)" and again.mentions == []
    assert [r.body_bytes > MAX_FEED for r in feeds.requests_to("archive.xml")] == [True, False]
    assert read == [item.guid for item in generated.items[:len(read)]]
    assert whole_items_within_limit <= len(read) <= whole_items_within_limit + 1
    assert len(read) < len(generated.items)
    assert [title_of(m) for m in polled.mentions[:4]] == [t for t, _ in HUGE_BRAND_LEADS]


# ---------------------------------------------------------------- network and server trouble


async def test_a_feed_that_answers_too_late_fails_the_poll(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.slow_next(LIVE, delay=5)
    collector = FeedCollector(http, Options.model_validate({"url": feeds.url(LIVE)}),
                              clock=clock, timeout=aiohttp.ClientTimeout(total=0.2))

    with pytest.raises(SourceUnavailable, match=r"^the feed gave no answer in time \(0.2 s\)$"):
        await collector.poll(FEED, {})


async def test_a_feed_that_drops_the_connection_is_unreachable(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    # aiohttp sends an idempotent GET again after a disconnect: drop both.
    feeds.timeout_next(LIVE, delay=0, times=2)

    with pytest.raises(SourceUnavailable,
                       match=r"^the feed is unreachable: ServerDisconnectedError$"):
        await reader(http, feeds.url(LIVE), clock).poll(FEED, {})


@pytest.mark.parametrize(("status", "retry_after"), [(429, 120.0), (503, 120.0), (500, None)])
async def test_a_server_error_or_rate_limit_fails_the_poll_with_its_retry_after(
    status: int, retry_after: float | None,
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock,
) -> None:
    feeds.fail_next(LIVE, status, retry_after=120)

    with pytest.raises(SourceUnavailable, match=rf"^the feed answered HTTP {status}$") as failed:
        await reader(http, feeds.url(LIVE), clock).poll(FEED, {})

    assert failed.value.retry_after == retry_after


@pytest.mark.parametrize("status", [429, 503])
async def test_a_retry_after_date_is_counted_from_the_collectors_clock(
    status: int, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock,
) -> None:
    feeds.retry_after_dates = True  # "Retry-After: <the test clock's now + 120 s>"
    feeds.fail_next(LIVE, status, retry_after=120)

    with pytest.raises(SourceUnavailable, match=rf"^the feed answered HTTP {status}$") as failed:
        await reader(http, feeds.url(LIVE), clock).poll(FEED, {})

    assert failed.value.retry_after == 120.0


async def test_a_feed_that_is_gone_fails_the_poll_with_404(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.remove(LIVE)

    with pytest.raises(SourceUnavailable, match=r"^the feed answered HTTP 404$") as failed:
        await reader(http, feeds.url(LIVE), clock).poll(FEED, {})

    assert failed.value.retry_after is None


async def test_a_redirect_is_followed_and_links_resolve_against_where_it_led(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    name = "broken-relative-links.xml"
    feeds.redirect("/rss.php", name, status=301)

    polled = await reader(http, feeds.url("/rss.php"), clock,
                          backfill_hours=ALL_HISTORY).poll(FEED, {})

    assert [m.url for m in polled.mentions] == [
        urljoin(feeds.url(name), item.link) for item in CORPUS[name].items if item.link
    ]
    assert polled.mentions[1].url == feeds.url("viewtopic.php?t=77&start=20")


async def test_a_redirect_loop_fails_the_poll(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.redirect("/a.xml", "/b.xml", status=302)
    feeds.redirect("/b.xml", "/a.xml", status=302)

    with pytest.raises(SourceUnavailable, match=r"^the feed redirects too many times$"):
        await reader(http, feeds.url("/a.xml"), clock).poll(FEED, {})


# ---------------------------------------------------------------- through storage


async def test_a_restarted_collector_neither_repeats_nor_skips_an_item(
    storage: Storage, feeds: FakeFeeds, clock: FakeClock
) -> None:
    team = feed_team()
    feeds.publish(LIVE, [FeedItem("Kcell: нет связи в Алмалы", guid="k-1"),
                         FeedItem("Продам роутер", guid="n-1"),
                         FeedItem("activ: медленный интернет", guid="a-1")])
    async with aiohttp.ClientSession() as http:
        first = await poll(FEED, reader(http, feeds.url(LIVE), clock),
                           storage=storage, team=team, clock=clock)
    clock.advance(minutes=5)
    feeds.publish(LIVE, [FeedItem("Актив: верните тариф", guid="a-2"),
                         FeedItem("Погода на выходные", guid="n-2"),
                         FeedItem("Кселл: списали деньги", guid="k-2")])

    # A new process: its own session, collector, engine and pipeline; only the database
    # remembers what was read.
    engine = storage.new_engine()
    async with aiohttp.ClientSession() as http:
        second = await collecting.poll(
            FEED, reader(http, feeds.url(LIVE), clock), uow=lambda: SqlUnitOfWork(engine),
            pipeline=Pipeline(team, clock=clock), clock=clock)

    assert (first.found, first.created) == (3, 2)
    assert [r.reason for r in second.results] == [None, DropReason.NO_BRAND, None]
    async with storage.engine.connect() as conn:
        stored = (await conn.execute(
            select(mentions_table.c.external_id, mentions_table.c.case_id)
            .where(mentions_table.c.source == FEED.name))).all()
    assert sorted(external_id for external_id, _ in stored) == ["a-1", "a-2", "k-1", "k-2"]
    assert len({case_id for _, case_id in stored}) == 4


async def test_a_successful_poll_records_the_source_health(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.publish(LIVE, [
        FeedItem("Kcell: нет 4G", guid="k-1", published=T0 - timedelta(minutes=10)),
        FeedItem("Продам роутер", guid="n-1", published=T0 - timedelta(minutes=30)),
    ])

    collected = await poll(FEED, reader(http, feeds.url(LIVE), clock),
                           storage=storage, team=feed_team(), clock=clock)

    state = await state_of(storage)
    assert state.last_success_at == T0
    assert state.items_found == 2
    assert state.last_item_at == T0 - timedelta(minutes=10)
    assert state.lag_seconds == 600
    assert (state.failures, state.last_error, state.note) == (0, None, None)
    assert state.cursor["seen"] == ["k-1", "n-1"]
    assert state.next_poll_at == collected.next_poll_at == T0 + timedelta(seconds=120)


async def test_a_source_is_not_polled_before_it_is_due(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    team, collector = feed_team(), reader(http, feeds.url(LIVE), clock)
    await poll(FEED, collector, storage=storage, team=team, clock=clock)
    clock.advance(seconds=119)

    early = await poll(FEED, collector, storage=storage, team=team, clock=clock)
    clock.advance(seconds=1)
    due = await poll(FEED, collector, storage=storage, team=team, clock=clock)

    assert (early.skipped, due.skipped) == (True, False)
    assert len(feeds.requests_to(LIVE)) == 2


async def test_a_failing_feed_is_recorded_and_polled_less_and_less_often(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    team, collector = feed_team(), reader(http, feeds.url(LIVE), clock)
    feeds.fail_next(LIVE, 500, times=6)
    waits = []
    for _ in range(6):
        collected = await poll(FEED, collector, storage=storage, team=team, clock=clock)
        assert collected.next_poll_at is not None
        waits.append((collected.next_poll_at - clock.now()).total_seconds())
        clock.current = collected.next_poll_at

    state = await state_of(storage)
    assert waits == [120, 240, 480, 960, 1920, 3600]
    assert (state.failures, state.last_error) == (6, "the feed answered HTTP 500")
    assert state.last_error_at == clock.now() - timedelta(hours=1)
    assert (state.last_success_at, state.cursor) == (None, {})


async def test_a_feed_that_asks_for_a_pause_is_not_polled_before_it_ends(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.fail_next(LIVE, 429, retry_after=900)

    collected = await poll(FEED, reader(http, feeds.url(LIVE), clock),
                           storage=storage, team=feed_team(), clock=clock)

    assert collected.error == "the feed answered HTTP 429"
    assert (await state_of(storage)).next_poll_at == T0 + timedelta(seconds=900)


async def test_the_team_is_told_once_when_a_feed_starts_failing_and_once_when_it_recovers(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    team, collector = feed_team(), reader(http, feeds.url(LIVE), clock)
    feeds.fail_next(LIVE, 503, times=4)
    alerts = []
    for _ in range(6):
        collected = await poll(FEED, collector, storage=storage, team=team, clock=clock)
        alerts.append(collected.alert)
        assert collected.next_poll_at is not None
        clock.current = collected.next_poll_at

    assert alerts == [None, None, (Alert.OK, Alert.FAILING), None, (Alert.FAILING, Alert.OK),
                      None]
    assert (await state_of(storage)).alert is Alert.OK


async def test_an_item_dated_in_words_is_dated_in_the_sources_timezone(
    feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    local = T0.astimezone(ZoneInfo("Asia/Almaty"))
    yesterday = (local - timedelta(days=1)).replace(hour=14, minute=30, second=0,
                                                    microsecond=0)
    feeds.serve("words.xml", (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Форум</title>'
        "<item><title>Kcell опять нет связи</title><guid>w-1</guid>"
        "<pubDate>вчера в 14:30</pubDate></item>"
        "<item><title>Кселл, қашан түзелесіздер?</title><guid>w-2</guid>"
        "<pubDate>2 сағат бұрын</pubDate></item>"
        "<item><title>Kcell roaming</title><guid>w-3</guid><pubDate>sometime</pubDate></item>"
        "</channel></rss>").encode())
    options = Options.model_validate({"url": feeds.url("words.xml"), "backfill_hours": 48})
    collector = FeedCollector(http, options, clock=clock, zone="Asia/Almaty")

    polled = await collector.poll(FEED, {})

    dated = {m.external_id.rsplit("/", 1)[-1]: m.published_at for m in polled.mentions}
    assert dated == {
        "w-1": yesterday.astimezone(UTC),
        "w-2": T0.replace(second=0, microsecond=0) - timedelta(hours=2),
        "w-3": T0,  # no date to read: dated when collected, as before
    }


# ---------------------------------------------------------------- a feed's last problem stays


MALFORMED = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
             b"<title>Qala</title><item><title>Kcell, where is 4G?</title><guid>m-1</guid>"
             b"</item><item><title>broken <b>tag</title></item></channel>")
CLEAN = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
         b"<title>Qala</title><item><title>Kcell, where is 4G?</title><guid>m-1</guid>"
         b"</item><item><title>Kcell roaming</title><guid>m-2</guid></item></channel></rss>")


async def test_a_malformed_feeds_warning_outlasts_its_304s_until_it_reads_cleanly(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.serve("broken.xml", MALFORMED)
    team = feed_team()
    collector = reader(http, feeds.url("broken.xml"), clock, backfill_hours=ALL_HISTORY)

    await poll(FEED, collector, storage=storage, team=team, clock=clock)
    warned = await state_of(storage)
    notes = []
    for _ in range(3):  # unchanged: 304 after 304
        clock.advance(minutes=5)
        await poll(FEED, collector, storage=storage, team=team, clock=clock)
        notes.append((await state_of(storage)).note)
    feeds.serve("broken.xml", CLEAN)
    clock.advance(minutes=5)
    await poll(FEED, collector, storage=storage, team=team, clock=clock)
    mended = await state_of(storage)

    assert warned.note is not None and warned.note.startswith("malformed feed")
    assert [r.status for r in feeds.requests_to("broken.xml")] == [200, 304, 304, 304, 200]
    assert notes == [f"{warned.note} (not modified since)"] * 3
    assert (mended.note, mended.failures) == (None, 0)


async def test_an_unreadable_feed_keeps_failing_across_304s_until_its_content_changes(
    storage: Storage, feeds: FakeFeeds, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    feeds.serve("gone.xml", b"<html><body>Maintenance</body></html>", content_type="text/html")
    team = feed_team()
    collector = reader(http, feeds.url("gone.xml"), clock, backfill_hours=ALL_HISTORY)
    failures = []
    for _ in range(3):
        collected = await poll(FEED, collector, storage=storage, team=team, clock=clock)
        state = await state_of(storage)
        failures.append((state.failures, state.last_error))
        assert collected.next_poll_at is not None
        clock.current = collected.next_poll_at
    feeds.serve("gone.xml", CLEAN)
    await poll(FEED, collector, storage=storage, team=team, clock=clock)
    mended = await state_of(storage)

    reason = "feed unreadable: not a feed: an HTML page"
    # Unchanged, it is not fetched again, and a 304 does not make it healthy.
    assert [r.status for r in feeds.requests_to("gone.xml")] == [200, 304, 304, 200]
    assert failures == [(1, reason), (2, f"{reason} (unchanged since)"),
                        (3, f"{reason} (unchanged since)")]
    assert (mended.failures, mended.note, mended.items_found) == (0, None, 2)
