"""Renewed access tokens kept in the database: a restart goes on with the newest token of
its chain (TikTok's rotated refresh token), processes renewing at once make one renewal,
new tokens set in the environment replace the kept ones — and no token reaches a log.

Each "process" is a collector of its own over an engine of its own on the same database,
against the fake APIs over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from socialcare.adapters.collectors import google_reviews, threads, tiktok
from socialcare.adapters.collectors.tokens import CLAIM, Grant, Keeping, fingerprint
from socialcare.bot.model import Tier
from socialcare.bot.sources import SourceUnavailable
from socialcare.bot.team import Source
from socialcare.storage.schema import source_tokens
from socialcare.storage.tokens import SqlTokenStore
from tests.conftest import T0, FakeClock, Storage
from tests.fakes.google_reviews import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    LOCATION,
    FakeGoogleReviews,
)
from tests.fakes.google_reviews import TOKEN as GOOGLE_TOKEN
from tests.fakes.server import ManualClock
from tests.fakes.threads import REFRESH as THREADS_REFRESH
from tests.fakes.threads import USER_ID, FakeThreads
from tests.fakes.tiktok import APP_ID, APP_SECRET, BUSINESS_ID, COMMENT_LIST, REFRESH, FakeTikTok

TIKTOK = Source(name="tiktok", kind="tiktok", platform="tiktok", tier=Tier.MAIN, brand="Kcell")
THREADS = Source(name="threads", kind="threads", platform="threads", tier=Tier.MAIN,
                 brand="Kcell")
SHOPS = Source(name="shops", kind="google_reviews", platform="google", tier=Tier.EXTRA,
               brand="Kcell")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def tt(clock: FakeClock) -> AsyncIterator[FakeTikTok]:
    async with FakeTikTok(now=clock.now, clock=ManualClock(), rate_limits=False) as server:
        video = server.add_video("Tariffs", T0 - timedelta(days=1))
        server.add_comment(video, "Where is my bonus?", username="aida_k",
                           at=T0 - timedelta(minutes=5))
        yield server


def kept_in(storage: Storage, source: Source, *, new_process: bool = True) -> Keeping:
    """Where a process keeps a source's tokens: the database, through its own engine."""
    engine = storage.new_engine() if new_process else storage.engine
    return Keeping(SqlTokenStore(engine), source.name)


def tiktok_process(http: aiohttp.ClientSession, fake: FakeTikTok, clock: FakeClock,
                   keeping: Keeping | None, *, access: str, refresh: str
                   ) -> tiktok.TikTokCollector:
    """A process's TikTok collector, started with the environment's tokens."""
    options = tiktok.Options(api_url=fake.url, business_id=BUSINESS_ID,
                             access_token_env="TT_ACCESS", refresh_token_env="TT_REFRESH",
                             app_id=APP_ID, app_secret_env="TT_SECRET")
    return tiktok.TikTokCollector(http, options, access_token=access, refresh_token=refresh,
                                  app_secret=APP_SECRET, clock=clock, keeping=keeping)


async def test_a_restart_goes_on_with_the_rotated_refresh_token_not_the_environments(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)  # the app's level: the database drivers' debug is off
    caplog.set_level(logging.DEBUG, logger="socialcare")
    environment = {"access": tt.access_token, "refresh": tt.refresh_token}
    first = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    tt.expire_tokens()
    await first.poll(TIKTOK, {})  # renewed: the environment's refresh token is dead now
    rotated = tt.refresh_token

    # The app restarts with the same environment: it reads the kept token.
    again = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    await again.poll(TIKTOK, {})
    tt.expire_tokens()  # a day later
    polled = await again.poll(TIKTOK, {})
    # Without the database, a restart is locked out.
    forgetful = tiktok_process(http, tt, clock, None, **environment)
    with pytest.raises(SourceUnavailable) as locked_out:
        await forgetful.poll(TIKTOK, {})

    refreshes = [call.params["refresh_token"] for call in tt.calls_to(REFRESH)]
    assert refreshes == [environment["refresh"], rotated, environment["refresh"]]
    assert [call.response["code"] for call in tt.calls_to(REFRESH)] == [0, 0, 40001]
    assert again.token.renewals == 1 and polled.mentions
    assert again.token.refresh_token == tt.refresh_token
    assert "authorise the app for the account again" in str(locked_out.value)
    # The kept access token served the restarted process before it ran out.
    assert tt.calls_to(COMMENT_LIST)[1].params["_token"] == \
        tt.calls_to(REFRESH)[0].response["data"]["access_token"]
    secrets_seen = {environment["access"], environment["refresh"], rotated, tt.refresh_token,
                    tt.access_token}
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in secrets_seen)]


async def test_two_processes_renewing_at_once_make_one_renewal_and_both_take_it(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage
) -> None:
    environment = {"access": tt.access_token, "refresh": tt.refresh_token}
    one = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    two = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    tt.expire_tokens()
    tt.slow_next(REFRESH, delay=0.3)  # the other process asks while this renewal runs

    polled = await asyncio.gather(one.poll(TIKTOK, {}), two.poll(TIKTOK, {}))

    [refresh] = tt.calls_to(REFRESH)
    assert refresh.params["refresh_token"] == environment["refresh"]
    assert one.token.renewals + two.token.renewals == 1
    assert one.token.refresh_token == two.token.refresh_token == tt.refresh_token
    assert all(p.mentions for p in polled)
    assert {c.params["_token"] for c in tt.calls_to(COMMENT_LIST)} == {tt.access_token}


async def test_ten_processes_at_once_still_make_one_renewal(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage
) -> None:
    environment = {"access": tt.access_token, "refresh": tt.refresh_token}
    processes = [tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
                 for _ in range(10)]
    tt.expire_tokens()

    await asyncio.gather(*(p.poll(TIKTOK, {}) for p in processes))

    assert len(tt.calls_to(REFRESH)) == 1
    assert {p.token.refresh_token for p in processes} == {tt.refresh_token}


async def test_a_renewal_that_fails_fails_the_waiting_process_too_with_one_call(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage
) -> None:
    environment = {"access": tt.access_token, "refresh": "rft.revoked"}
    one = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    two = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **environment)
    tt.expire_tokens()
    tt.slow_next(REFRESH, delay=0.3)

    failures = await asyncio.gather(one.poll(TIKTOK, {}), two.poll(TIKTOK, {}),
                                    return_exceptions=True)

    assert len(tt.calls_to(REFRESH)) == 1
    assert all(isinstance(f, SourceUnavailable) for f in failures)
    assert all("authorise the app for the account again" in str(f) for f in failures)


async def test_new_tokens_in_the_environment_replace_the_kept_ones_and_an_old_one_does_not(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage
) -> None:
    old = {"access": tt.access_token, "refresh": tt.refresh_token}
    first = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **old)
    tt.expire_tokens()
    await first.poll(TIKTOK, {})
    # The admin authorises the app again and sets the new pair in the environment.
    new = {"access": tt.issue_access_token(), "refresh": tt.issue_refresh_token()}
    restarted = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **new)
    await restarted.poll(TIKTOK, {})
    # A process still running with the old environment starts later: it does not undo it.
    stale = tiktok_process(http, tt, clock, kept_in(storage, TIKTOK), **old)
    await stale.poll(TIKTOK, {})

    used = [c.params["_token"] for c in tt.calls_to(COMMENT_LIST)]
    assert used[-2:] == [new["access"], new["access"]]
    assert stale.token.refresh_token == new["refresh"]
    assert len(tt.calls_to(REFRESH)) == 1


async def test_a_claim_left_by_a_process_that_died_is_taken_over_once_it_runs_out(
    http: aiohttp.ClientSession, tt: FakeTikTok, clock: FakeClock, storage: Storage
) -> None:
    environment = {"access": tt.access_token, "refresh": tt.refresh_token}
    store = SqlTokenStore(storage.engine)
    seed = Grant(environment["access"], None, environment["refresh"])
    kept = await store.load("tiktok", seed, fingerprint=fingerprint(seed))
    assert await store.claim("tiktok", kept.version, now=clock.now(),
                             until=clock.now() + CLAIM) is not None  # and then it died
    assert await store.claim("tiktok", kept.version, now=clock.now(),
                             until=clock.now() + CLAIM) is None
    clock.advance(seconds=CLAIM.total_seconds() + 1)
    tt.expire_tokens()

    polled = await tiktok_process(http, tt, clock, kept_in(storage, TIKTOK),
                                  **environment).poll(TIKTOK, {})

    assert polled.mentions and len(tt.calls_to(REFRESH)) == 1
    async with storage.engine.connect() as conn:
        row = (await conn.execute(select(source_tokens))).one()
    assert (row.claim, row.claimed_until, row.version) == (None, None, kept.version + 1)
    assert row.refresh_token == tt.refresh_token


async def test_googles_hourly_token_is_renewed_once_for_every_process(
    http: aiohttp.ClientSession, clock: FakeClock, storage: Storage
) -> None:
    async with FakeGoogleReviews(now=clock.now, clock=ManualClock(),
                                 rate_limits=False) as fake:
        fake.add_review(LOCATION, "Rude staff", stars=1, at=T0 - timedelta(minutes=5))
        options = google_reviews.Options(
            api_url=fake.url, oauth_url=fake.token_url,
            account=ACCOUNT.removeprefix("accounts/"), locations=(LOCATION.rsplit("/", 1)[-1],),
            client_id=CLIENT_ID, client_secret_env="G_SECRET", refresh_token_env="G_REFRESH")
        processes = [google_reviews.ReviewsCollector(
            http, options, client_secret=CLIENT_SECRET, refresh_token=fake.refresh_token,
            clock=clock, keeping=kept_in(storage, SHOPS)) for _ in range(3)]
        fake.slow_next(GOOGLE_TOKEN, delay=0.2)
        await asyncio.gather(*(p.poll(SHOPS, {}) for p in processes))
        clock.advance(hours=1)  # run out: renewed again, once
        await asyncio.gather(*(p.poll(SHOPS, {}) for p in processes))

        assert len(fake.calls_to(GOOGLE_TOKEN)) == 2


async def test_threads_daily_refresh_is_once_a_day_whichever_process_and_restart(
    http: aiohttp.ClientSession, clock: FakeClock, storage: Storage
) -> None:
    async with FakeThreads(now=clock.now, clock=ManualClock(), rate_limits=False) as fake:
        fake.add_post("Tariffs", T0 - timedelta(days=1))
        environment = fake.token
        options = threads.Options(api_url=fake.url, user_id=USER_ID, token_env="TH_TOKEN")

        def process() -> threads.ThreadsCollector:
            return threads.ThreadsCollector(http, options, token=environment, clock=clock,
                                            keeping=kept_in(storage, THREADS))

        first = process()
        await first.poll(THREADS, {})  # refreshed at the first poll, as before
        clock.advance(hours=3)
        restarted = process()
        await restarted.poll(THREADS, {})  # a restart does not refresh again
        clock.advance(hours=22)
        await asyncio.gather(first.poll(THREADS, {}), restarted.poll(THREADS, {}))

        refreshes = fake.calls_to(THREADS_REFRESH)
        assert len(refreshes) == 2
        assert refreshes[0].params["access_token"] == environment
        assert refreshes[1].params["access_token"] == refreshes[0].response["access_token"]
        assert restarted.token.renewals + first.token.renewals == 2


def test_a_grant_never_shows_its_tokens() -> None:
    shown = repr(Grant("act.secret-access", T0, "rft.secret-refresh"))

    assert "secret" not in shown and "2026" in shown
