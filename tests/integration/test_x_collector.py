"""The X collector against the fake X API v2: search, paging, rate limits, replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from socialcare.adapters.collectors import x
from socialcare.bot import collecting
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.model import Author, RawMention, Tier
from socialcare.bot.pipeline import Outcome, Pipeline, normalise
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source
from socialcare.storage.schema import mentions as mentions_table
from tests.conftest import Storage, make_team
from tests.fakes.server import ManualClock
from tests.fakes.x import CREATE, SEARCH, FakeX

SOURCE = Source(name="x", kind="x", platform="x", tier=Tier.MAIN, poll_seconds=60)
KEYWORDS = ("Kcell", "Кселл")


class FakeXTime:
    """The bot's clock, read off the fake X's wall clock.

    FakeX's time is the real time at its start, moved by the ManualClock it runs on; the
    collector must see the same time, or its start_time would not be X's.
    """

    def __init__(self, fake: FakeX) -> None:
        self._fake = fake

    def now(self) -> datetime:
        return self._fake.now()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake_x(ticks: ManualClock) -> AsyncIterator[FakeX]:
    async with FakeX(clock=ticks) as fake:
        yield fake


def collector(
    http: aiohttp.ClientSession, fake: FakeX, *, user_token: str | None = "user",
    backfill_hours: int = 24,
) -> x.XCollector:
    """Return an X collector on the fake; `user_token` "user" is the fake's user token."""
    options = x.Options(api_url=fake.url, bearer_env="X_BEARER", user_token_env="X_USER",
                        backfill_hours=backfill_hours)
    return x.XCollector(
        http, options, bearer=fake.bearer_token,
        user_token=fake.user_token if user_token == "user" else user_token,
        keywords=KEYWORDS, clock=FakeXTime(fake))


def ids(polled: Polled) -> list[str]:
    return [m.external_id for m in polled.mentions]


def seed(fake: FakeX, count: int, *, start: datetime, step: timedelta) -> list[str]:
    """Add `count` posts naming the brand, oldest first; return their ids."""
    return [fake.add_tweet(f"Kcell no signal #{i}", author=f"user{i % 7}",
                           created_at=start + i * step).id for i in range(count)]


# --------------------------------------------------------------------------- reading


async def test_a_mention_comes_with_its_author_time_link_and_thread(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    jane = fake_x.add_user("jane_doe", "Jane Doe")
    bob = fake_x.add_user("bob", "Bob Roe")
    posted = fake_x.now() - timedelta(minutes=20)
    root = fake_x.add_tweet("Kcell my parcel is late", author=jane, created_at=posted)
    reply = fake_x.add_tweet("Kcell same here", author=bob, in_reply_to=root)

    polled = await collector(http, fake_x).poll(SOURCE, {})

    found = {m.external_id: m for m in polled.mentions}
    assert found[root.id] == RawMention(
        source="x", external_id=root.id, text="Kcell my parcel is late",
        published_at=posted.replace(microsecond=0),
        url=f"https://x.com/jane_doe/status/{root.id}",
        author=Author(id=jane.id, name="Jane Doe", handle="@jane_doe",
                      url="https://x.com/jane_doe"),
        thread_id=f"{root.id}:{jane.id}", parent_id=None,
    )
    # A reply keeps its conversation, is its author's own thread, and names its parent.
    assert found[reply.id].thread_id == f"{root.id}:{bob.id}"
    assert found[reply.id].parent_id == root.id
    assert found[reply.id].author.handle == "@bob"


async def test_the_search_asks_for_any_brand_keyword_and_leaves_out_retweets(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    latin = fake_x.add_tweet("Kcell, no 4G again")
    cyrillic = fake_x.add_tweet("Кселл опять без связи")
    fake_x.add_tweet("Beeline is fine today")

    polled = await collector(http, fake_x).poll(SOURCE, {})

    assert sorted(ids(polled)) == sorted([latin.id, cyrillic.id])
    assert fake_x.calls_to(SEARCH)[0].params["query"] == "(Kcell OR Кселл) -is:retweet"


async def test_the_second_poll_asks_since_the_newest_post_and_gets_only_new_ones(
    http: aiohttp.ClientSession, fake_x: FakeX, ticks: ManualClock
) -> None:
    old = [fake_x.add_tweet(f"Kcell old {i}") for i in range(3)]
    xc = collector(http, fake_x)
    first = await xc.poll(SOURCE, {})
    ticks.advance(60)
    new = [fake_x.add_tweet(f"Kcell new {i}") for i in range(2)]

    second = await xc.poll(SOURCE, first.cursor)

    assert first.cursor == {"since_id": old[-1].id}
    assert sorted(ids(second)) == sorted(t.id for t in new)
    call = fake_x.calls_to(SEARCH)[-1]
    assert call.params["since_id"] == old[-1].id and "start_time" not in call.params
    assert second.cursor == {"since_id": new[-1].id}


async def test_the_first_poll_reads_back_backfill_hours_and_sends_no_since_id(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    now = fake_x.now()
    fake_x.add_tweet("Kcell three hours ago", created_at=now - timedelta(hours=3))
    recent = fake_x.add_tweet("Kcell an hour ago", created_at=now - timedelta(hours=1))

    polled = await collector(http, fake_x, backfill_hours=2).poll(SOURCE, {})

    assert ids(polled) == [recent.id]
    [call] = fake_x.calls_to(SEARCH)
    assert call.params["start_time"] == (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "since_id" not in call.params


async def test_a_burst_over_one_page_is_read_page_by_page(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    seeded = seed(fake_x, 230, start=fake_x.now() - timedelta(hours=4),
                  step=timedelta(seconds=30))

    polled = await collector(http, fake_x).poll(SOURCE, {})

    assert sorted(ids(polled), key=int) == seeded
    calls = fake_x.calls_to(SEARCH)
    assert [c.params["max_results"] for c in calls] == ["100"] * 3
    assert "next_token" not in calls[0].params
    assert all(c.params["next_token"] for c in calls[1:])
    assert polled.cursor == {"since_id": seeded[-1]}


async def test_a_burst_over_ten_pages_is_read_over_two_polls(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    seeded = seed(fake_x, 1050, start=fake_x.now() - timedelta(hours=20),
                  step=timedelta(seconds=60))
    xc = collector(http, fake_x)

    first = await xc.poll(SOURCE, {})
    second = await xc.poll(SOURCE, first.cursor)

    assert len(first.mentions) == 100 * x.MAX_PAGES
    assert first.note == "more pages than one poll reads" and first.cursor["resume_token"]
    assert sorted(ids(first) + ids(second), key=int) == seeded
    assert second.cursor == {"since_id": seeded[-1]}


async def test_a_429_on_page_two_keeps_page_one_and_the_next_poll_goes_on_from_page_two(
    http: aiohttp.ClientSession, ticks: ManualClock
) -> None:
    async with FakeX(clock=ticks, search_limit=1) as fake:
        # Spread over the whole backfill: the oldest are near its start, on page two.
        seeded = seed(fake, 150, start=fake.now() - timedelta(hours=24, minutes=-2),
                      step=timedelta(minutes=9))
        xc = collector(http, fake)

        first = await xc.poll(SOURCE, {})
        assert len(first.mentions) == 100 and first.retry_after is not None
        assert 890 < first.retry_after <= 901  # the 15-minute window X reported resetting
        assert "429" in (first.note or "")
        # The bot waits for the reset; meanwhile more posts arrive.
        ticks.advance(15 * 60 + 1)
        arrived = [fake.add_tweet(f"Kcell arrived {i}").id for i in range(5)]
        second = await xc.poll(SOURCE, first.cursor)
        ticks.advance(15 * 60 + 1)
        third = await xc.poll(SOURCE, second.cursor)

    started, _, resumed = fake.calls_to(SEARCH)[:3]
    assert resumed.params["next_token"] == first.cursor["resume_token"]
    assert resumed.params["start_time"] == started.params["start_time"]  # not 15 min later
    everything = ids(first) + ids(second) + ids(third)
    assert sorted(everything, key=int) == seeded + arrived  # nothing missing, nothing twice
    assert ids(third) == list(reversed(arrived))
    assert third.cursor == {"since_id": arrived[-1]}


async def test_a_429_on_the_first_page_fails_the_poll_with_x_rate_limit_reset(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    fake_x.add_tweet("Kcell hello")
    fake_x.fail_next(SEARCH, 429, retry_after=600)

    with pytest.raises(SourceUnavailable) as failure:
        await collector(http, fake_x).poll(SOURCE, {})

    # X sends no Retry-After: the wait is read from x-rate-limit-reset, a Unix time.
    assert failure.value.retry_after is not None and 590 < failure.value.retry_after <= 601
    assert "rate limited" in str(failure.value)


async def test_the_rate_limit_reset_is_counted_from_the_collectors_clock(
    http: aiohttp.ClientSession, fake_x: FakeX, ticks: ManualClock
) -> None:
    ticks.advance(3600)  # X's time, and the bot's, an hour past the wall clock
    fake_x.add_tweet("Kcell hello")
    fake_x.fail_next(SEARCH, 429, retry_after=600)

    with pytest.raises(SourceUnavailable) as failure:
        await collector(http, fake_x).poll(SOURCE, {})

    assert failure.value.retry_after is not None and 599 <= failure.value.retry_after <= 601


async def test_a_since_id_older_than_x_searches_is_dropped_for_the_oldest_start_it_takes(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    now = fake_x.now()
    quiet = fake_x.add_tweet("Kcell last week", created_at=now - timedelta(days=8))
    recent = [fake_x.add_tweet("Kcell six days ago", created_at=now - timedelta(days=6)),
              fake_x.add_tweet("Kcell just now")]

    polled = await collector(http, fake_x).poll(SOURCE, {"since_id": quiet.id})

    # X refuses a since_id older than its seven days; a week without mentions must not
    # leave the source failing for good.
    assert sorted(ids(polled)) == sorted(t.id for t in recent)
    [call] = fake_x.calls_to(SEARCH)
    assert "since_id" not in call.params and call.status == 200
    assert polled.cursor == {"since_id": recent[-1].id}


# --------------------------------------------------------------------------- replies


async def test_a_reply_is_posted_under_the_mention_with_the_user_token(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    customer = fake_x.add_tweet("Kcell my router died", author="jane_doe")
    xc = collector(http, fake_x)
    [raw] = (await xc.poll(SOURCE, {})).mentions
    mention = normalise(raw, fake_x.now(), default_platform="x")

    published = await xc.publish(SOURCE, mention, "Sorry Jane, DM us your number?")

    [call] = fake_x.calls_to(CREATE)
    assert call.params["_auth"] == "user"
    assert call.params["reply"] == {"in_reply_to_tweet_id": customer.id}
    assert call.params["text"] == "Sorry Jane, DM us your number?"
    [posted] = fake_x.replies_to(customer)
    assert published.external_id == posted.id
    assert published.url == f"https://x.com/i/web/status/{posted.id}"


async def test_a_reply_with_the_app_only_token_fails_with_x_reason(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    fake_x.add_tweet("Kcell my router died")
    xc = collector(http, fake_x, user_token=fake_x.bearer_token)  # app-only, by mistake
    [raw] = (await xc.poll(SOURCE, {})).mentions

    with pytest.raises(PublishFailed) as failure:
        await xc.publish(SOURCE, normalise(raw, fake_x.now(), default_platform="x"), "Hi")

    assert "HTTP 403" in str(failure.value)
    assert "OAuth 2.0 Application-Only is forbidden" in str(failure.value)
    assert fake_x.posted == []


async def test_without_a_user_token_replies_fail_before_asking_x(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    fake_x.add_tweet("Kcell my router died")
    xc = collector(http, fake_x, user_token=None)
    [raw] = (await xc.poll(SOURCE, {})).mentions

    with pytest.raises(PublishFailed, match="user_token_env"):
        await xc.publish(SOURCE, normalise(raw, fake_x.now(), default_platform="x"), "Hi")

    assert not xc.can_publish
    assert fake_x.calls_to(CREATE) == []


# --------------------------------------------------------------------------- with storage


async def _stored_mentions(storage: Storage) -> int:
    async with storage.engine.connect() as conn:
        query = select(func.count()).select_from(mentions_table)
        return (await conn.execute(query)).scalar_one()


async def test_after_a_restart_the_stored_cursor_neither_refetches_nor_skips(
    storage: Storage, http: aiohttp.ClientSession, fake_x: FakeX, ticks: ManualClock
) -> None:
    team = make_team(sources=(SOURCE,))
    clock = FakeXTime(fake_x)
    pipeline = Pipeline(team, clock=clock)
    before = seed(fake_x, 120, start=fake_x.now() - timedelta(hours=2),
                  step=timedelta(seconds=30))

    first = await collecting.poll(SOURCE, collector(http, fake_x), uow=storage.uow,
                                  pipeline=pipeline, clock=clock)
    ticks.advance(SOURCE.poll_seconds)
    after = [fake_x.add_tweet(f"Kcell after the restart {i}").id for i in range(3)]
    async with aiohttp.ClientSession() as other_http:  # a new process: new client, same DB
        second = await collecting.poll(SOURCE, collector(other_http, fake_x),
                                       uow=storage.uow, pipeline=Pipeline(team, clock=clock),
                                       clock=clock)

    assert (first.found, first.created, first.error) == (120, 120, None)
    assert (second.found, second.created, second.error) == (3, 3, None)
    assert {r.outcome for r in second.results} == {Outcome.CREATED}
    assert fake_x.calls_to(SEARCH)[-1].params["since_id"] == before[-1]
    assert await _stored_mentions(storage) == len(before) + len(after)
    async with storage.uow() as uow:
        state = await uow.sources.get(SOURCE.name)
    assert state.cursor == {"since_id": after[-1]}
    assert state.items_found == 123 and state.failures == 0



async def test_a_poll_cut_short_by_a_429_waits_and_resumes_from_the_stored_cursor(
    storage: Storage, http: aiohttp.ClientSession, ticks: ManualClock
) -> None:
    team = make_team(sources=(SOURCE,))
    async with FakeX(clock=ticks, search_limit=1) as fake:
        clock = FakeXTime(fake)
        seeded = seed(fake, 130, start=fake.now() - timedelta(hours=3),
                      step=timedelta(minutes=1))
        polled_at = fake.now()

        cut = await collecting.poll(SOURCE, collector(http, fake), uow=storage.uow,
                                    pipeline=Pipeline(team, clock=clock), clock=clock)
        early = await collecting.poll(SOURCE, collector(http, fake), uow=storage.uow,
                                      pipeline=Pipeline(team, clock=clock), clock=clock)
        ticks.advance(15 * 60 + 1)
        resumed = await collecting.poll(SOURCE, collector(http, fake), uow=storage.uow,
                                        pipeline=Pipeline(team, clock=clock), clock=clock)

    assert (cut.found, cut.created, cut.error) == (100, 100, None)
    assert cut.next_poll_at is not None
    assert cut.next_poll_at - polled_at > timedelta(minutes=14)
    assert early.skipped  # the bot keeps to the reset time X gave
    assert (resumed.found, resumed.created) == (30, 30)
    assert len(fake.calls_to(SEARCH)) == 3
    assert await _stored_mentions(storage) == len(seeded)
    async with storage.uow() as uow:
        state = await uow.sources.get(SOURCE.name)
    assert state.cursor == {"since_id": seeded[-1]}


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def test_a_picture_reply_uploads_the_image_then_posts_the_reply_with_it(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    customer = fake_x.add_tweet("Kcell how do I set up APN", author="jane_doe")
    xc = collector(http, fake_x)
    [raw] = (await xc.poll(SOURCE, {})).mentions
    mention = normalise(raw, fake_x.now(), default_platform="x")

    published = await xc.publish_picture(SOURCE, mention, "Here is how",
                                         Picture("apn.png", PNG))

    [(media_id, uploaded)] = fake_x.media.items()
    assert uploaded == PNG  # the bytes that were sent
    [call] = fake_x.calls_to(CREATE)
    assert call.params["media"] == {"media_ids": [media_id]}
    [posted] = fake_x.replies_to(customer)
    assert fake_x.tweet_media[posted.id] == [media_id]
    assert published.external_id == posted.id


async def test_a_picture_reply_without_media_write_fails_with_xs_reason(
    http: aiohttp.ClientSession, fake_x: FakeX
) -> None:
    fake_x.add_tweet("Kcell how do I set up APN", author="jane_doe")
    fake_x.media_write = False
    xc = collector(http, fake_x)
    [raw] = (await xc.poll(SOURCE, {})).mentions

    with pytest.raises(PublishFailed, match=r"media\.write"):
        await xc.publish_picture(SOURCE, normalise(raw, fake_x.now(), default_platform="x"),
                                 "Here is how", Picture("apn.png", PNG))
    assert fake_x.posted == []
