"""The VK collector against the fake VK API over HTTP: search, wall comments, limits, replies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from socialcare.adapters.collectors.vk import Options, VkCollector
from socialcare.bot import collecting
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.model import Author, Mention, RawMention, Tier
from socialcare.bot.pipeline import Outcome, Pipeline
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source
from socialcare.storage.schema import cases as cases_table
from socialcare.storage.schema import mentions as mentions_table
from tests.conftest import FakeClock, Storage, make_team
from tests.fakes.vk import FakeVK

GROUP = 229_000_001  # the brand's community
WALL = -GROUP  # its wall
REPLY_TOKEN = "vk1.a.FakeKcellCommunityToken"
SOURCE = Source(name="vk", kind="vk", platform="vk", tier=Tier.MAIN, poll_seconds=60)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def vk(clock: FakeClock) -> AsyncIterator[FakeVK]:
    """A fake VK on the test's clock; its 3-a-second limit is off (one test turns it on)."""
    fake = FakeVK(now=clock.now, rate_limits=False)
    async with fake:
        fake.add_group(GROUP, "Kcell", screen_name="kcell")
        fake.add_token(REPLY_TOKEN, WALL)
        yield fake


def collector(
    http: aiohttp.ClientSession,
    vk: FakeVK,
    *,
    queries: tuple[str, ...] = ("Kcell",),
    walls: tuple[int, ...] = (),
    token: str | None = None,
    reply_token: str | None = None,
    calls_per_second: float = 1000.0,
    photo_token: str | None = None,
) -> VkCollector:
    """Build a collector that talks to the fake."""
    options = Options(
        api_url=f"{vk.url}/method",  # type: ignore[arg-type]
        token_env="VK_SERVICE_TOKEN",
        reply_token_env="VK_GROUP_TOKEN" if reply_token else None,
        walls=walls,
        group_id=GROUP,
        calls_per_second=calls_per_second,
    )
    return VkCollector(http, options, token=token or vk.token, reply_token=reply_token,
                       queries=queries, photo_token=photo_token)


def ago(clock: FakeClock, **delta: float) -> datetime:
    return clock.now() - timedelta(**delta)


def ids(polled: Polled) -> list[str]:
    return [m.external_id for m in polled.mentions]


def mention_of(raw: RawMention, clock: FakeClock) -> Mention:
    """Return the stored form of a polled mention, as publish receives it."""
    return Mention(
        source=raw.source, external_id=raw.external_id, platform="vk", text=raw.text,
        published_at=raw.published_at, collected_at=clock.now(),
        thread_key=raw.thread_id or raw.external_id, author=raw.author, url=raw.url,
        parent_id=raw.parent_id,
    )


async def learned(source: VkCollector, cursor: Mapping[str, Any] | None = None) -> Polled:
    """Poll once so the collector learns the walls; the history must not come back."""
    polled = await source.poll(SOURCE, cursor or {})
    assert polled.mentions == []
    return polled


# --------------------------------------------------------------------------- search


async def test_search_finds_posts_naming_the_brand_with_their_author_link_and_time(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    vk.add_profile(7001, "Aigerim", "Saparova", screen_name="aigerim_s")
    vk.add_group(30_500, "Almaty Today", screen_name="almaty_today")
    by_user = vk.add_post(7001, "Kcell, no 4G in Almaty again", ago(clock, minutes=20))
    by_group = vk.add_post(-30_500, "Kcell outage in the south", ago(clock, minutes=5))
    vk.add_post(7001, "Beeline works fine", ago(clock, minutes=3))

    polled = await collector(http, vk).poll(SOURCE, {})

    group_post, user_post = polled.mentions
    assert user_post == RawMention(
        source="vk", external_id=f"7001_{by_user.id}", text="Kcell, no 4G in Almaty again",
        published_at=ago(clock, minutes=20), url=f"https://vk.com/wall7001_{by_user.id}",
        author=Author(id="7001", name="Aigerim Saparova", handle="aigerim_s",
                      url="https://vk.com/aigerim_s"),
    )
    assert group_post.url == f"https://vk.com/wall-30500_{by_group.id}"
    assert group_post.author == Author(id="-30500", name="Almaty Today", handle="almaty_today",
                                       url="https://vk.com/almaty_today")
    assert group_post.published_at == ago(clock, minutes=5)
    assert polled.note is None and polled.retry_after is None


async def test_search_pages_through_next_from_past_two_hundred_results(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    posts = [vk.add_post(7001, f"Kcell #{n}", ago(clock, seconds=30 * n)) for n in range(450)]

    polled = await collector(http, vk).poll(SOURCE, {})

    assert sorted(ids(polled)) == sorted(f"7001_{p.id}" for p in posts)
    searches = vk.calls_to("newsfeed.search")
    assert len(searches) == 3
    assert "start_from" not in searches[0].params
    assert [s.params["start_from"] for s in searches[1:]] == [
        searches[0].response["response"]["next_from"],
        searches[1].response["response"]["next_from"],
    ]


async def test_the_next_search_returns_only_new_posts_and_one_indexed_late(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    source = collector(http, vk)
    vk.add_post(7001, "Kcell old", ago(clock, minutes=30))
    newest = vk.add_post(7002, "Kcell newest", ago(clock, minutes=4))
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=10)
    fresh = vk.add_post(7003, "Kcell fresh", ago(clock, minutes=1))
    # Older than the newest post seen, but VK indexed it only now.
    late = vk.add_post(7004, "Kcell late", ago(clock, minutes=12))

    second = await source.poll(SOURCE, first.cursor)
    third = await source.poll(SOURCE, second.cursor)

    assert len(first.mentions) == 2
    assert sorted(ids(second)) == sorted([f"7003_{fresh.id}", f"7004_{late.id}"])
    assert third.mentions == []
    since = int(vk.calls_to("newsfeed.search")[1].params["start_time"])
    assert since == newest.date - 600


# --------------------------------------------------------------------------- walls


async def test_the_first_look_at_a_wall_returns_no_history(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    vk.add_comment(WALL, post.id, "Kcell, too expensive", ago(clock, hours=4), 7001)
    vk.add_post(WALL, "Quiet post", ago(clock, hours=3))

    polled = await collector(http, vk, queries=(), walls=(WALL,)).poll(SOURCE, {})

    assert polled.mentions == []
    assert polled.cursor["walls"][str(WALL)]["last_comment"] > post.id


async def test_later_polls_return_new_comments_rereading_only_posts_whose_count_changed(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    busy = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    quiet = vk.add_post(WALL, "Holiday hours", ago(clock, hours=4))
    old = vk.add_comment(WALL, busy.id, "old complaint", ago(clock, hours=3), 7001)
    vk.add_comment(WALL, quiet.id, "thanks", ago(clock, hours=2), 7002)
    source = collector(http, vk, queries=(), walls=(WALL,))
    first = await learned(source)
    clock.advance(minutes=2)
    new = vk.add_comment(WALL, busy.id, "still no signal", ago(clock, minutes=1), 7003)
    vk.reset_calls()

    second = await source.poll(SOURCE, first.cursor)
    third = await source.poll(SOURCE, second.cursor)

    assert ids(second) == [f"{WALL}_{busy.id}_{new.id}"]
    assert old.id < new.id
    assert third.mentions == []
    read = [c.params["post_id"] for c in vk.calls_to("wall.getComments")]
    assert read == [str(busy.id)]  # the quiet post, unchanged, is not read again
    assert len(vk.calls_to("wall.get")) == 2


async def test_replies_carry_their_parent_and_a_customers_comments_share_a_thread(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    source = collector(http, vk, queries=(), walls=(WALL,))
    first = await learned(source)
    question = vk.add_comment(WALL, post.id, "Kcell, where is my refund?", ago(clock, minutes=9),
                              7001)
    other = vk.add_comment(WALL, post.id, "me too", ago(clock, minutes=8), 7002)
    answer = vk.add_comment(WALL, post.id, "Please DM us", ago(clock, minutes=7), WALL,
                            question.id)
    again = vk.add_comment(WALL, post.id, "sent", ago(clock, minutes=6), 7001, answer.id)
    later = vk.add_comment(WALL, post.id, "any news?", ago(clock, minutes=5), 7001)

    polled = await source.poll(SOURCE, first.cursor)

    found = {m.external_id: m for m in polled.mentions}
    key = f"{WALL}_{post.id}"
    assert set(found) == {f"{key}_{c.id}" for c in (question, other, answer, again, later)}
    assert found[f"{key}_{answer.id}"].parent_id == f"{key}_{question.id}"
    assert found[f"{key}_{again.id}"].parent_id == f"{key}_{answer.id}"
    assert found[f"{key}_{question.id}"].parent_id is None
    customer = {found[f"{key}_{c.id}"].thread_id for c in (question, again, later)}
    assert customer == {f"{key}:7001"}
    assert found[f"{key}_{other.id}"].thread_id == f"{key}:7002"
    brand = found[f"{key}_{answer.id}"]
    assert brand.thread_id == f"{key}:{WALL}"
    assert (brand.author.handle, brand.author.name) == ("kcell", "Kcell")
    assert brand.url == f"https://vk.com/wall{key}?reply={answer.id}"


async def test_history_replies_newer_than_the_last_top_level_comment_stay_history(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    question = vk.add_comment(WALL, post.id, "Kcell?", ago(clock, hours=4), 7001)
    vk.add_comment(WALL, post.id, "and me", ago(clock, hours=3), 7002)
    vk.add_comment(WALL, post.id, "DM us", ago(clock, hours=2), WALL, question.id)
    source = collector(http, vk, queries=(), walls=(WALL,))
    first = await learned(source)
    new = vk.add_comment(WALL, post.id, "hello?", ago(clock, minutes=1), 7003)

    second = await source.poll(SOURCE, first.cursor)

    assert ids(second) == [f"{WALL}_{post.id}_{new.id}"]


async def test_a_new_reply_deep_in_a_long_thread_is_collected(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    question = vk.add_comment(WALL, post.id, "Kcell?", ago(clock, hours=4), 7001)
    for n in range(12):  # VK shows a thread's first 10 replies with the comment
        vk.add_comment(WALL, post.id, f"reply {n}", ago(clock, minutes=200 - n), 7001 + n % 2,
                       question.id)
    source = collector(http, vk, queries=(), walls=(WALL,))
    first = await learned(source)
    vk.add_profile(7003, "Dana", "Omarova", screen_name="dana_o")
    new = vk.add_comment(WALL, post.id, "still waiting", ago(clock, minutes=1), 7003,
                         question.id)

    second = await source.poll(SOURCE, first.cursor)

    assert ids(second) == [f"{WALL}_{post.id}_{new.id}"]
    assert second.mentions[0].parent_id == f"{WALL}_{post.id}_{question.id}"
    assert second.mentions[0].author.name == "Dana Omarova"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("code", "wait", "words"), [
    (6, 2.0, "Too many requests per second"),
    (9, 600.0, "Flood control"),
    (29, 3600.0, "Rate limit reached"),
])
async def test_a_vk_rate_limit_makes_the_source_unavailable_for_vks_wait(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock, code: int, wait: float,
    words: str
) -> None:
    vk.add_post(7001, "Kcell", ago(clock, minutes=1))
    vk.fail_next_vk("newsfeed.search", code)

    with pytest.raises(SourceUnavailable) as failed:
        await collector(http, vk).poll(SOURCE, {})

    assert failed.value.retry_after == wait
    assert str(failed.value) == f"VK newsfeed.search: rate limited ({code}: {words})"


async def test_a_rate_limit_after_some_results_keeps_them_and_the_next_poll_loses_nothing(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    source = collector(http, vk, walls=(WALL,))
    first = await learned(source)
    clock.advance(minutes=5)
    found = vk.add_post(7001, "Kcell, my balance vanished", ago(clock, minutes=2))
    comment = vk.add_comment(WALL, post.id, "no signal", ago(clock, minutes=1), 7002)
    vk.fail_next_vk("wall.get", 29)

    stopped = await source.poll(SOURCE, first.cursor)
    clock.advance(hours=1)
    resumed = await source.poll(SOURCE, stopped.cursor)

    assert ids(stopped) == [f"7001_{found.id}"]
    assert stopped.retry_after == 3600.0
    assert stopped.note == "VK wall.get: rate limited (29: Rate limit reached)"
    assert ids(resumed) == [f"{WALL}_{post.id}_{comment.id}"]


async def test_a_bad_token_makes_the_source_unavailable(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    vk.add_post(7001, "Kcell", ago(clock, minutes=1))

    with pytest.raises(SourceUnavailable) as failed:
        await collector(http, vk, token="vk1.a.revoked").poll(SOURCE, {})

    assert failed.value.retry_after is None
    assert str(failed.value).startswith("VK newsfeed.search: error (5: User authorization failed")


async def test_a_vk_server_error_page_makes_the_source_unavailable(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    vk.fail_next("newsfeed.search", 502)

    with pytest.raises(SourceUnavailable, match=r"^VK newsfeed.search: HTTP 502$"):
        await collector(http, vk).poll(SOURCE, {})


async def test_an_unreachable_vk_makes_the_source_unavailable(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    port = vk.port
    await vk.close()

    with pytest.raises(SourceUnavailable, match=f"cannot connect to 127.0.0.1:{port}"):
        await collector(http, vk).poll(SOURCE, {})


async def test_calls_are_spaced_to_stay_under_vks_rate_limit(
    http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    queries = tuple(f"Kcell{n}" for n in range(6))
    async with FakeVK(now=clock.now, requests_per_second=5) as limited:
        assert isinstance(limited, FakeVK)
        source = collector(http, limited, queries=queries, calls_per_second=4)
        started = time.monotonic()
        await source.poll(SOURCE, {})
        took = time.monotonic() - started

    assert [c.fault for c in limited.calls] == [None] * 6
    assert took >= 5 / 4


# --------------------------------------------------------------------------- replies


async def test_publish_comments_under_the_post_answering_the_customers_comment(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=1))
    question = vk.add_comment(WALL, post.id, "Kcell, refund?", ago(clock, minutes=5), 7001)
    to = mention_of(RawMention(source="vk", external_id=f"{WALL}_{post.id}_{question.id}",
                               text="Kcell, refund?", published_at=ago(clock, minutes=5)), clock)

    published = await collector(http, vk, reply_token=REPLY_TOKEN).publish(
        SOURCE, to, "We have sent it today")

    [call] = vk.calls_to("wall.createComment")
    assert {k: call.params[k] for k in
            ("owner_id", "post_id", "reply_to_comment", "from_group", "message",
             "access_token")} == {
        "owner_id": str(WALL), "post_id": str(post.id), "reply_to_comment": str(question.id),
        "from_group": str(GROUP), "message": "We have sent it today",
        "access_token": REPLY_TOKEN,
    }
    [reply] = vk.created_comments
    assert (reply.from_id, reply.reply_to_comment, reply.text) == (
        WALL, question.id, "We have sent it today")
    assert published.external_id == f"{WALL}_{post.id}_{reply.id}"
    assert published.url == f"https://vk.com/wall{WALL}_{post.id}?reply={reply.id}"


async def test_publish_to_a_post_comments_at_the_top_level(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(7001, "Kcell, no signal", ago(clock, minutes=5))
    to = mention_of(RawMention(source="vk", external_id=f"7001_{post.id}", text=post.text,
                               published_at=post.at), clock)

    published = await collector(http, vk, reply_token=REPLY_TOKEN).publish(SOURCE, to, "Sorry!")

    [call] = vk.calls_to("wall.createComment")
    assert "reply_to_comment" not in call.params
    [reply] = vk.created_comments
    assert (reply.owner_id, reply.post_id, reply.parents_stack) == (7001, post.id, [])
    assert published.external_id == f"7001_{post.id}_{reply.id}"


async def test_a_published_reply_comes_back_from_the_wall_under_the_id_publish_gave(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=1))
    source = collector(http, vk, queries=(), walls=(WALL,), reply_token=REPLY_TOKEN)
    first = await learned(source)
    vk.add_comment(WALL, post.id, "Kcell, refund?", ago(clock, minutes=5), 7001)
    second = await source.poll(SOURCE, first.cursor)

    published = await source.publish(SOURCE, mention_of(second.mentions[0], clock), "Done")
    echo = await source.poll(SOURCE, second.cursor)

    assert ids(echo) == [published.external_id]
    assert echo.mentions[0].parent_id == second.mentions[0].external_id


async def test_publish_without_a_reply_token_fails(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(7001, "Kcell, no signal", ago(clock, minutes=5))
    to = mention_of(RawMention(source="vk", external_id=f"7001_{post.id}", text=post.text,
                               published_at=post.at), clock)
    source = collector(http, vk)

    with pytest.raises(PublishFailed, match="no reply_token_env"):
        await source.publish(SOURCE, to, "Sorry!")

    assert not source.can_publish
    assert vk.calls_to("wall.createComment") == []


async def test_publish_to_an_id_that_is_not_vks_fails(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    to = mention_of(RawMention(source="vk", external_id="tw:123", text="Kcell",
                               published_at=ago(clock, minutes=5)), clock)

    with pytest.raises(PublishFailed, match="not a VK post or comment id: tw:123"):
        await collector(http, vk, reply_token=REPLY_TOKEN).publish(SOURCE, to, "Sorry!")

    assert vk.calls == []


async def test_publish_refused_by_vk_fails_with_vks_reason(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(7001, "Kcell, no signal", ago(clock, minutes=5))
    to = mention_of(RawMention(source="vk", external_id=f"7001_{post.id}", text=post.text,
                               published_at=post.at), clock)
    vk.fail_next_vk("wall.createComment", 9)

    with pytest.raises(PublishFailed, match=r"rate limited \(9: Flood control\)"):
        await collector(http, vk, reply_token=REPLY_TOKEN).publish(SOURCE, to, "Sorry!")

    assert vk.created_comments == []


# --------------------------------------------------------------------------- collecting


async def _count(storage: Storage, table: Any) -> int:
    async with storage.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_cursors_survive_a_restart_nothing_ingested_twice_nothing_skipped(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock, storage: Storage
) -> None:
    team = make_team(sources=(SOURCE,))
    pipeline = Pipeline(team, clock=clock)
    deps = {"uow": storage.uow, "pipeline": pipeline, "clock": clock}
    wall_post = vk.add_post(WALL, "New tariff", ago(clock, hours=5))
    vk.add_comment(WALL, wall_post.id, "Kcell, history", ago(clock, hours=4), 7001)
    vk.add_post(7001, "Kcell, no 4G", ago(clock, minutes=30))
    vk.add_post(7002, "Кселл, где деньги?", ago(clock, minutes=20))
    before = collector(http, vk, queries=("Kcell", "Кселл"), walls=(WALL,))

    first = await collecting.poll(SOURCE, before, **deps)
    clock.advance(minutes=2)
    vk.add_post(7003, "Kcell, the app crashes", ago(clock, minutes=1))
    vk.add_comment(WALL, wall_post.id, "Kcell, what about my refund?", ago(clock, seconds=30),
                   7004)
    restarted = collector(http, vk, queries=("Kcell", "Кселл"), walls=(WALL,))
    second = await collecting.poll(SOURCE, restarted, **deps)
    clock.advance(minutes=2)
    third = await collecting.poll(SOURCE, collector(http, vk, queries=("Kcell", "Кселл"),
                                                    walls=(WALL,)), **deps)

    assert (first.error, first.found, first.created) == (None, 2, 2)
    assert (second.error, second.found, second.created) == (None, 2, 2)
    assert [r.outcome for r in second.results] == [Outcome.CREATED] * 2
    assert (third.error, third.found) == (None, 0)
    assert await _count(storage, cases_table) == 4
    assert await _count(storage, mentions_table) == 4
    async with storage.uow() as uow:
        state = await uow.sources.get("vk")
    assert state.items_found == 4
    assert state.next_poll_at == clock.now() + timedelta(seconds=60)


async def test_a_rate_limited_poll_waits_vks_time_and_the_next_one_loses_nothing(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock, storage: Storage
) -> None:
    deps = {"uow": storage.uow, "pipeline": Pipeline(make_team(sources=(SOURCE,)), clock=clock),
            "clock": clock}
    vk.add_post(7001, "Kcell, no 4G", ago(clock, minutes=30))
    await collecting.poll(SOURCE, collector(http, vk), **deps)
    clock.advance(minutes=2)
    missed = vk.add_post(7002, "Kcell, where is my refund?", ago(clock, minutes=1))
    vk.fail_next_vk("newsfeed.search", 9)
    failed_at = clock.now()

    failed = await collecting.poll(SOURCE, collector(http, vk), **deps)
    early = await collecting.poll(SOURCE, collector(http, vk), **deps)
    clock.advance(minutes=10)
    resumed = await collecting.poll(SOURCE, collector(http, vk), **deps)

    assert failed.error == "VK newsfeed.search: rate limited (9: Flood control)"
    assert failed.next_poll_at == failed_at + timedelta(seconds=600)  # VK's wait, not 60 s
    assert early.skipped
    assert (resumed.error, resumed.found, resumed.created) == (None, 1, 1)
    async with storage.uow() as uow:
        [stored] = await uow.mentions.for_case(resumed.results[0].case_id)
    assert stored.external_id == f"7002_{missed.id}"


PHOTO_TOKEN = "vk1.a.FakeAgentUserTokenWithPhotos"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def test_a_picture_reply_uploads_the_photo_then_comments_with_it(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    vk.add_token(PHOTO_TOKEN, 7001)  # a user token: the wall upload server wants one
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=1))
    question = vk.add_comment(WALL, post.id, "Kcell, APN?", ago(clock, minutes=5), 7001)
    to = mention_of(RawMention(source="vk", external_id=f"{WALL}_{post.id}_{question.id}",
                               text="Kcell, APN?", published_at=ago(clock, minutes=5)), clock)
    without_photo_token = collector(http, vk, reply_token=REPLY_TOKEN).picture_limits(SOURCE)
    made = collector(http, vk, reply_token=REPLY_TOKEN, photo_token=PHOTO_TOKEN)

    published = await made.publish_picture(SOURCE, to, "Here is how",
                                           Picture("apn.png", PNG))

    assert without_photo_token is None
    assert made.picture_limits(SOURCE) is not None
    assert [c.params["access_token"] for c in vk.calls_to("photos.getWallUploadServer")] == \
        [PHOTO_TOKEN]
    [saved] = vk.calls_to("photos.saveWallPhoto")
    assert saved.params["group_id"] == str(GROUP)
    [(owner, photo_id)] = vk.wall_photos
    assert vk.wall_photos[(owner, photo_id)] == PNG  # the bytes that were uploaded
    [reply] = vk.created_comments
    assert (reply.reply_to_comment, reply.text) == (question.id, "Here is how")
    assert vk.comment_attachments[reply.id] == f"photo{WALL}_{photo_id}"
    [comment] = vk.calls_to("wall.createComment")
    assert comment.params["access_token"] == REPLY_TOKEN
    assert published.external_id == f"{WALL}_{post.id}_{reply.id}"


async def test_a_community_token_cannot_upload_wall_photos(
    http: aiohttp.ClientSession, vk: FakeVK, clock: FakeClock
) -> None:
    post = vk.add_post(WALL, "New tariff", ago(clock, hours=1))
    to = mention_of(RawMention(source="vk", external_id=f"{WALL}_{post.id}", text="?",
                               published_at=ago(clock, minutes=5)), clock)
    made = collector(http, vk, reply_token=REPLY_TOKEN, photo_token=REPLY_TOKEN)

    with pytest.raises(PublishFailed, match="27"):
        await made.publish_picture(SOURCE, to, "Here is how", Picture("apn.png", PNG))
    assert vk.created_comments == []
