"""Google Business Profile reviews against the fake API: new and changed reviews, stars,
paging, the quota, the hourly token renewed, the owner's reply as updateReply — and, on
storage, an edited review following up (and reopening) its case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from socialcare.adapters.collectors import google_reviews
from socialcare.bot import cases, collecting
from socialcare.bot.model import Author, Mention, Priority, RawMention, State, Tier
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import SourceUnavailable
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.fakes.google_reviews import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    LIST,
    LOCATION,
    OTHER_LOCATION,
    TOKEN,
    UPDATE_REPLY,
    FakeGoogleReviews,
)
from tests.fakes.server import ManualClock

SOURCE = Source(name="shops", kind="google_reviews", platform="google", tier=Tier.EXTRA,
                brand="Kcell", poll_seconds=600)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ticks() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: FakeClock, ticks: ManualClock) -> AsyncIterator[FakeGoogleReviews]:
    async with FakeGoogleReviews(now=clock.now, clock=ticks) as server:
        yield server


def collector(http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock, *,
              refresh_token: str | None = None) -> google_reviews.ReviewsCollector:
    options = google_reviews.Options(
        api_url=fake.url, oauth_url=fake.token_url, account=ACCOUNT.removeprefix("accounts/"),
        locations=(LOCATION.rsplit("/", 1)[-1], OTHER_LOCATION.rsplit("/", 1)[-1]),
        client_id=CLIENT_ID, client_secret_env="G_SECRET", refresh_token_env="G_REFRESH")
    return google_reviews.ReviewsCollector(
        http, options, client_secret=CLIENT_SECRET,
        refresh_token=refresh_token or fake.refresh_token, clock=clock)


async def test_a_review_comes_with_its_stars_reviewer_and_rating(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    review = fake.add_review(LOCATION, "The shop on Abay street was rude", stars=2,
                             at=T0 - timedelta(minutes=30), reviewer="Dana Serik")
    other = fake.add_review(OTHER_LOCATION, "", stars=5, at=T0 - timedelta(minutes=5))

    polled = await collector(http, fake, clock).poll(SOURCE, {})

    assert polled.mentions == [
        RawMention(source="shops", external_id=review.name,
                   text="★★☆☆☆ 2/5\n\nThe shop on Abay street was rude",
                   published_at=T0 - timedelta(minutes=30), platform="google",
                   author=Author(name="Dana Serik"), rating=2),
        RawMention(source="shops", external_id=other.name, text="★★★★★ 5/5",
                   published_at=T0 - timedelta(minutes=5), platform="google",
                   author=Author(name="Dana Serik"), rating=5),
    ]
    call = fake.calls_to(LIST)[0]
    assert (call.params["orderBy"], call.params["pageSize"]) == ("updateTime desc", "50")
    assert call.params["_auth"].startswith("Bearer ya29.")


async def test_reviews_are_found_once_across_pages_and_polls_and_an_edit_comes_again(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    many = [fake.add_review(LOCATION, f"Review {i}", stars=4,
                            at=T0 - timedelta(minutes=200 - i)) for i in range(120)]
    reader = collector(http, fake, clock)
    first = await reader.poll(SOURCE, {})
    clock.advance(minutes=10)
    fake.edit_review(many[3], "Changed my mind: awful", stars=1, at=clock.now())
    new = fake.add_review(LOCATION, "New one", stars=3, at=clock.now())
    second = await reader.poll(SOURCE, first.cursor)
    third = await reader.poll(SOURCE, second.cursor)

    assert sorted(m.external_id for m in first.mentions) == sorted(r.name for r in many)
    assert len([c for c in fake.calls_to(LIST) if c.params["_location"] == LOCATION]) >= 3
    edited = next(m for m in second.mentions if m.thread_id)
    assert edited.external_id.startswith(many[3].name + "@")
    assert (edited.thread_id, edited.rating) == (many[3].name, 1)
    assert edited.text == "★☆☆☆☆ 1/5\n\nChanged my mind: awful"
    assert {m.external_id for m in second.mentions} == {edited.external_id, new.name}
    assert third.mentions == []


async def test_a_review_already_answered_elsewhere_is_left_alone(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    review = fake.add_review(LOCATION, "Fine", stars=4, at=T0 - timedelta(minutes=9))
    review.reply, review.replied = "Thank you!", T0 - timedelta(minutes=1)

    assert (await collector(http, fake, clock).poll(SOURCE, {})).mentions == []


async def test_the_quota_stops_the_poll_and_asks_for_a_pause(
    http: aiohttp.ClientSession, clock: FakeClock, ticks: ManualClock
) -> None:
    async with FakeGoogleReviews(now=clock.now, clock=ticks, requests_per_minute=1) as fake:
        kept = fake.add_review(LOCATION, "Rude", stars=1, at=T0 - timedelta(minutes=1))
        later = fake.add_review(OTHER_LOCATION, "Slow", stars=2, at=T0 - timedelta(minutes=1))
        reader = collector(http, fake, clock)
        polled = await reader.poll(SOURCE, {})
        with pytest.raises(SourceUnavailable) as refused:
            await reader.poll(SOURCE, polled.cursor)
        ticks.advance(61)
        resumed = await reader.poll(SOURCE, polled.cursor)

    assert [m.external_id for m in polled.mentions] == [kept.name]
    assert polled.note == "Google reviews.list: rate limited (HTTP 429)"
    assert polled.retry_after == google_reviews.RATE_WAIT
    assert refused.value.retry_after == google_reviews.RATE_WAIT
    # The next poll starts with the location the quota stopped.
    assert [m.external_id for m in resumed.mentions] == [later.name]


async def test_the_hourly_token_is_renewed_when_it_runs_out_or_is_refused(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    fake.add_review(LOCATION, "Rude", stars=1, at=T0 - timedelta(minutes=1))
    reader = collector(http, fake, clock)
    first = await reader.poll(SOURCE, {})
    fake.expire_tokens()  # refused before the hour is over (revoked, clock skew …)
    await reader.poll(SOURCE, first.cursor)
    clock.advance(hours=2)  # ran out: renewed before the call
    await reader.poll(SOURCE, first.cursor)

    tokens = fake.calls_to(TOKEN)
    assert len(tokens) == 3
    assert tokens[0].params == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                "refresh_token": fake.refresh_token,
                                "grant_type": "refresh_token"}
    assert [c.status for c in fake.calls_to(LIST)].count(401) == 1


async def test_a_revoked_refresh_token_fails_the_poll_saying_what_to_do(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    with pytest.raises(SourceUnavailable) as failure:
        await collector(http, fake, clock, refresh_token="1//revoked").poll(SOURCE, {})

    assert "invalid_grant" in str(failure.value) or "HTTP 400" in str(failure.value)
    assert "set a new refresh token" in str(failure.value)


async def test_the_owners_reply_is_put_on_the_review(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock
) -> None:
    review = fake.add_review(LOCATION, "Rude", stars=1, at=T0)
    to = Mention(source="shops", external_id=review.name, platform="google", text="Rude",
                 published_at=T0, collected_at=T0, thread_key=review.name)

    await collector(http, fake, clock).publish(SOURCE, to, "Dana, we are sorry: call us")
    with pytest.raises(PublishFailed, match="not a review of this source"):
        await collector(http, fake, clock).publish(
            SOURCE, Mention(source="shops", external_id="x", platform="google", text="x",
                            published_at=T0, collected_at=T0, thread_key="accounts/9/x"), "Hi")

    [call] = fake.calls_to(UPDATE_REPLY)
    assert (call.params["_name"], call.params["body"]) == (
        review.name, {"comment": "Dana, we are sorry: call us"})
    assert review.reply == "Dana, we are sorry: call us"


async def test_an_edited_review_reopens_its_resolved_case_on_storage(
    http: aiohttp.ClientSession, fake: FakeGoogleReviews, clock: FakeClock, storage: Storage
) -> None:
    team = make_team(sources=(*make_team().sources, SOURCE))
    pipeline = Pipeline(team, clock=clock)
    reader = collector(http, fake, clock)
    review = fake.add_review(LOCATION, "No signal inside the shop", stars=2,
                             at=T0 - timedelta(minutes=5))
    first = await collecting.poll(SOURCE, reader, uow=storage.uow, pipeline=pipeline,
                                  clock=clock)
    [created] = first.results
    assert created.case_id is not None
    await cases.mark_answered(cases.MarkAnswered(created.case_id, "aigerim", text="Sorry"),
                              uow=storage.uow(), clock=clock, team=team)
    await cases.resolve(cases.Resolve(created.case_id, "aigerim"), uow=storage.uow(),
                        clock=clock, team=team)
    clock.advance(minutes=15)
    fake.edit_review(review, "Still no signal", stars=1, at=clock.now())

    second = await collecting.poll(SOURCE, reader, uow=storage.uow, pipeline=pipeline,
                                   clock=clock)

    [joined] = second.results
    assert joined.case_id == created.case_id
    async with storage.uow() as uow:
        case = await uow.cases.get(created.case_id)
    assert case.state is State.REOPENED
    assert (case.brand, case.tier, case.priority) == ("Kcell", Tier.EXTRA, Priority.URGENT)
