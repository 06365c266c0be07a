"""The Threads collector against the fake Threads API: conversations of the brand's
posts and mentions, paging, the rate limit, the token refreshed (and an expired one
named), the reply quota shown, replies as container + publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from socialcare.adapters.collectors import threads
from socialcare.bot.model import Author, Mention, RawMention, Tier
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import SourceUnavailable
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock
from tests.fakes.server import ManualClock
from tests.fakes.threads import (
    CONVERSATION,
    CREATE,
    PUBLISH,
    REFRESH,
    USER_ID,
    FakeThreads,
)

SOURCE = Source(name="threads", kind="threads", platform="threads", tier=Tier.MAIN,
                brand="Kcell")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: FakeClock, ticks: ManualClock) -> AsyncIterator[FakeThreads]:
    async with FakeThreads(now=clock.now, clock=ticks) as server:
        yield server


def collector(http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock,
              token: str | None = None) -> threads.ThreadsCollector:
    options = threads.Options(api_url=fake.url, user_id=USER_ID, token_env="THREADS_TOKEN")
    return threads.ThreadsCollector(http, options, token=token or fake.token, clock=clock)


async def test_replies_to_the_brands_posts_and_mentions_are_collected_as_conversations(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    post = fake.add_post("New tariffs are here", T0 - timedelta(days=1))
    reply = fake.add_reply(post, "Where is my bonus?", username="aida_k",
                           at=T0 - timedelta(minutes=20))
    nested = fake.add_reply(reply, "Me too", username="bolat", at=T0 - timedelta(minutes=10))
    mention = fake.add_post("@kcell_kz no signal in Aksay", T0 - timedelta(minutes=5),
                            username="erlan", mentions_brand=True)

    polled = await collector(http, fake, clock).poll(SOURCE, {})

    found = {m.external_id: m for m in polled.mentions}
    assert set(found) == {reply.id, nested.id, mention.id}
    assert found[reply.id] == RawMention(
        source="threads", external_id=reply.id, text="Where is my bonus?",
        published_at=T0 - timedelta(minutes=20),
        url=f"https://www.threads.net/@aida_k/post/C{reply.id[-8:]}", platform="threads",
        author=Author(name="aida_k", handle="@aida_k", url="https://www.threads.net/@aida_k"),
        thread_id=f"{post.id}:aida_k")
    assert (found[nested.id].thread_id, found[nested.id].parent_id) == (
        f"{post.id}:bolat", reply.id)
    assert found[mention.id].thread_id == f"{mention.id}:erlan"
    assert polled.note == "replies: 0 of 1000 a day"


async def test_each_reply_is_found_once_across_pages_and_polls(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    post = fake.add_post("Roaming", T0 - timedelta(days=1))
    many = [fake.add_reply(post, f"Roaming #{i}", username=f"u{i}",
                           at=T0 - timedelta(minutes=130 - i)) for i in range(120)]
    reader = collector(http, fake, clock)
    one = await reader.poll(SOURCE, {})
    clock.advance(minutes=3)
    later = fake.add_reply(post, "Still nothing", username="dana", at=clock.now())
    two = await reader.poll(SOURCE, one.cursor)

    assert sorted(m.external_id for m in one.mentions) == sorted(r.id for r in many)
    assert len(fake.calls_to(CONVERSATION)) >= 3 + 1
    assert [m.external_id for m in two.mentions] == [later.id]


async def test_the_rate_limit_fails_the_poll_with_a_pause_and_keeps_what_was_read(
    http: aiohttp.ClientSession, clock: FakeClock, ticks: ManualClock
) -> None:
    async with FakeThreads(now=clock.now, clock=ticks, requests_per_hour=2) as fake:
        post = fake.add_post("Tariffs", T0 - timedelta(days=1))
        reply = fake.add_reply(post, "Expensive", username="aida_k", at=T0)
        reader = collector(http, fake, clock)
        # The posts and their conversation fit; the mentions are refused.
        partly = await reader.poll(SOURCE, {})
        with pytest.raises(SourceUnavailable) as refused:
            await reader.poll(SOURCE, partly.cursor)

    assert [m.external_id for m in partly.mentions] == [reply.id]
    assert "rate limited, code 4" in (partly.note or "")
    assert partly.retry_after == threads.RATE_WAIT
    assert refused.value.retry_after == threads.RATE_WAIT


async def test_the_token_is_refreshed_once_a_day_while_the_source_runs(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    reader = collector(http, fake, clock)
    first = fake.token
    await reader.poll(SOURCE, {})
    await reader.poll(SOURCE, {})
    clock.advance(days=1, minutes=1)
    await reader.poll(SOURCE, {})

    refreshes = fake.calls_to(REFRESH)
    assert len(refreshes) == 2
    assert refreshes[0].params == {"grant_type": "th_refresh_token", "access_token": first}
    assert refreshes[1].params["access_token"] == refreshes[0].response["access_token"]


async def test_an_expired_token_fails_the_poll_saying_a_new_one_is_needed(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    fake.add_post("Tariffs", T0 - timedelta(days=1))
    fake.expire_tokens()

    with pytest.raises(SourceUnavailable) as failure:
        await collector(http, fake, clock).poll(SOURCE, {})

    assert "code 190" in str(failure.value)
    assert "set a new long-lived token" in str(failure.value)


async def test_a_reply_is_a_text_container_then_its_publishing(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    post = fake.add_post("Tariffs", T0 - timedelta(days=1))
    reply = fake.add_reply(post, "Where is my bonus?", username="aida_k", at=T0)
    to = Mention(source="threads", external_id=reply.id, platform="threads", text="?",
                 published_at=T0, collected_at=T0, thread_key=f"{post.id}:aida_k")

    published = await collector(http, fake, clock).publish(SOURCE, to, "Aida, it is back")

    [create] = fake.calls_to(CREATE)
    [publish] = fake.calls_to(PUBLISH)
    assert {k: create.params[k] for k in ("media_type", "text", "reply_to_id")} == {
        "media_type": "TEXT", "text": "Aida, it is back", "reply_to_id": reply.id}
    assert publish.params["creation_id"] == create.response["id"]
    [made] = fake.published
    assert published.external_id == made.id and made.replied_to == reply.id
    # The reply quota now shows the reply.
    assert (await collector(http, fake, clock).poll(SOURCE, {})).note == \
        "replies: 1 of 1000 a day"


async def test_a_reply_to_a_post_that_is_gone_is_a_publish_failure(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock
) -> None:
    to = Mention(source="threads", external_id="404", platform="threads", text="?",
                 published_at=T0, collected_at=T0, thread_key="404:x")

    with pytest.raises(PublishFailed, match="does not exist"):
        await collector(http, fake, clock).publish(SOURCE, to, "Hello")
