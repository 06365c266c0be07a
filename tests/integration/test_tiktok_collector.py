"""The TikTok collector against the fake API for Business: comments of the account's
videos, paging, the rate limit, expired tokens renewed, replies as the documented call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from socialcare.adapters.collectors import tiktok
from socialcare.bot.model import Author, Mention, RawMention, Tier
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock
from tests.fakes.server import ManualClock
from tests.fakes.tiktok import (
    APP_ID,
    APP_SECRET,
    BUSINESS_ID,
    COMMENT_LIST,
    REFRESH,
    REPLY_CREATE,
    FakeTikTok,
)

SOURCE = Source(name="tiktok", kind="tiktok", platform="tiktok", tier=Tier.MAIN, brand="Kcell")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: FakeClock, ticks: ManualClock) -> AsyncIterator[FakeTikTok]:
    async with FakeTikTok(now=clock.now, clock=ticks) as server:
        yield server


def collector(http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock, *,
              refresh: bool = True, refresh_token: str | None = None
              ) -> tiktok.TikTokCollector:
    options = tiktok.Options(
        api_url=fake.url, business_id=BUSINESS_ID, access_token_env="TT_ACCESS",
        refresh_token_env="TT_REFRESH" if refresh else None, app_id=APP_ID,
        app_secret_env="TT_SECRET")
    return tiktok.TikTokCollector(
        http, options, access_token=fake.access_token,
        refresh_token=(refresh_token or fake.refresh_token) if refresh else None,
        app_secret=APP_SECRET,
        clock=clock)


def ids(polled: Polled) -> list[str]:
    return [m.external_id for m in polled.mentions]


async def test_comments_and_replies_under_the_accounts_videos_are_collected_with_thread(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    video = fake.add_video("New year tariffs", T0 - timedelta(days=1))
    top = fake.add_comment(video, "Where are my bonus minutes?", username="aida_k",
                           at=T0 - timedelta(minutes=20))
    reply = fake.add_comment(video, "Same here!", username="bolat", reply_to=top,
                             at=T0 - timedelta(minutes=10))
    fake.add_comment(video, "Happy new year, friends!", username="kcell_kz", owner=True,
                     at=T0 - timedelta(minutes=5))

    polled = await collector(http, fake, clock).poll(SOURCE, {})

    found = {m.external_id: m for m in polled.mentions}
    assert set(found) == {top.comment_id, reply.comment_id}  # not the account's own post
    assert found[top.comment_id] == RawMention(
        source="tiktok", external_id=top.comment_id, text="Where are my bonus minutes?",
        published_at=T0 - timedelta(minutes=20), url=video.share_url, platform="tiktok",
        author=Author(id=top.user_id, name="Aida K", handle="@aida_k",
                      url="https://www.tiktok.com/@aida_k"),
        thread_id=f"{video.item_id}:{top.comment_id}")
    assert found[reply.comment_id].thread_id == f"{video.item_id}:{top.comment_id}"
    assert found[reply.comment_id].parent_id == top.comment_id
    [call] = fake.calls_to(COMMENT_LIST)
    assert call.params["_token"] == fake.access_token
    assert (call.params["include_replies"], call.params["sort_order"]) == ("true", "desc")


async def test_each_comment_is_found_once_across_polls_and_pages(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    video = fake.add_video("Roaming", T0 - timedelta(days=2))
    first = [fake.add_comment(video, f"Kcell roaming #{i}", username=f"user{i}",
                              at=T0 - timedelta(minutes=70 - i)) for i in range(65)]
    reader = collector(http, fake, clock)

    one = await reader.poll(SOURCE, {})
    clock.advance(minutes=2)
    later = fake.add_comment(video, "Still no roaming", username="dana", at=clock.now())
    two = await reader.poll(SOURCE, one.cursor)

    assert sorted(ids(one)) == sorted(c.comment_id for c in first)
    assert len(fake.calls_to(COMMENT_LIST)) >= 3 + 1  # 65 comments, 30 a page
    assert ids(two) == [later.comment_id]


async def test_the_rate_limit_stops_the_poll_and_asks_for_a_pause(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    fake.add_video("Tariffs", T0 - timedelta(days=1))
    fake.fail_next(COMMENT_LIST, 429)

    with pytest.raises(SourceUnavailable) as failure:
        await collector(http, fake, clock).poll(SOURCE, {})

    assert "rate limited (40100" in str(failure.value)
    assert failure.value.retry_after == tiktok.RATE_WAIT


async def test_a_rate_limit_after_a_video_keeps_what_was_read_and_goes_on_later(
    http: aiohttp.ClientSession, clock: FakeClock, ticks: ManualClock
) -> None:
    async with FakeTikTok(now=clock.now, clock=ticks, requests_per_minute=2) as fake:
        newer = fake.add_video("Newer", T0 - timedelta(days=1))
        older = fake.add_video("Older", T0 - timedelta(days=2))
        read = fake.add_comment(newer, "Kcell, my SIM is blocked", username="erlan",
                                at=T0 - timedelta(minutes=3))
        left = fake.add_comment(older, "No signal in Aksay", username="zhan",
                                at=T0 - timedelta(minutes=4))
        reader = collector(http, fake, clock)

        # Two calls a minute: the video list and the newest video's comments.
        first = await reader.poll(SOURCE, {})
        ticks.advance(61)
        second = await reader.poll(SOURCE, first.cursor)

    assert ids(first) == [read.comment_id]
    assert "rate limited (40100" in (first.note or "")
    assert first.retry_after == tiktok.RATE_WAIT
    assert ids(second) == [left.comment_id]


async def test_an_expired_token_is_renewed_once_and_the_call_made_again(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    video = fake.add_video("Tariffs", T0 - timedelta(days=1))
    comment = fake.add_comment(video, "Why so expensive?", username="aida_k",
                               at=T0 - timedelta(minutes=1))
    reader = collector(http, fake, clock)
    old_refresh = fake.refresh_token
    fake.expire_tokens()

    polled = await reader.poll(SOURCE, {})

    assert ids(polled) == [comment.comment_id]
    [refresh] = fake.calls_to(REFRESH)
    assert refresh.params | {"client_secret": "…"} == {
        "client_id": APP_ID, "client_secret": "…", "grant_type": "refresh_token",
        "refresh_token": old_refresh, "_token": None}
    assert reader.token.renewals == 1
    assert reader.token.refresh_token == fake.refresh_token  # the rotated one is kept
    # The renewed token serves the calls that follow.
    assert {c.params["_token"] for c in fake.calls_to(COMMENT_LIST)} == {fake.access_token}


async def test_a_token_that_cannot_be_renewed_fails_the_poll_saying_what_to_do(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    fake.add_video("Tariffs", T0 - timedelta(days=1))
    fake.expire_tokens()

    with pytest.raises(SourceUnavailable) as without:
        await collector(http, fake, clock, refresh=False).poll(SOURCE, {})
    with pytest.raises(SourceUnavailable) as revoked:  # a refresh token TikTok forgot
        await collector(http, fake, clock, refresh_token="rft.revoked").poll(SOURCE, {})

    assert "access token was refused (40102" in str(without.value)
    assert "authorise the app for the account again" in str(revoked.value)


async def test_a_reply_goes_out_as_reply_create_under_the_top_comment(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    video = fake.add_video("Tariffs", T0 - timedelta(days=1))
    top = fake.add_comment(video, "Bonus gone", username="aida_k", at=T0)
    reply = fake.add_comment(video, "+1", username="bolat", at=T0, reply_to=top)
    to = Mention(source="tiktok", external_id=reply.comment_id, platform="tiktok",
                 text="+1", published_at=T0, collected_at=T0,
                 thread_key=f"{video.item_id}:{top.comment_id}", url=video.share_url)

    published = await collector(http, fake, clock).publish(SOURCE, to, "We are on it, Bolat")

    [call] = fake.calls_to(REPLY_CREATE)
    assert {k: call.params[k] for k in ("business_id", "video_id", "comment_id", "text")} == {
        "business_id": BUSINESS_ID, "video_id": video.item_id, "comment_id": top.comment_id,
        "text": "We are on it, Bolat"}
    [made] = fake.replies_created
    assert published.external_id == made.comment_id
    assert made.parent_comment_id == top.comment_id


async def test_a_reply_the_api_refuses_is_a_publish_failure(
    http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock
) -> None:
    video = fake.add_video("Tariffs", T0 - timedelta(days=1))
    to = Mention(source="tiktok", external_id="1", platform="tiktok", text="x",
                 published_at=T0, collected_at=T0, thread_key=f"{video.item_id}:404")

    with pytest.raises(PublishFailed, match="comment does not exist"):
        await collector(http, fake, clock).publish(SOURCE, to, "Hello")
