"""The YouTube collector against the fake YouTube Data API over HTTP: comments, search,
the quota budget, and replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from socialcare.adapters.collectors.youtube import Options, QuotaBudget, YoutubeCollector
from socialcare.bot import collecting
from socialcare.bot.model import Author, Mention, RawMention, Tier
from socialcare.bot.pipeline import Outcome, Pipeline
from socialcare.bot.ports import PublishFailed
from socialcare.bot.sources import Polled, SourceUnavailable
from socialcare.bot.team import Source
from socialcare.storage.schema import cases as cases_table
from socialcare.storage.schema import mentions as mentions_table
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.fakes.youtube import FakeYouTube, channel_id_for

CHANNEL = "UCkcellOfficialChannel0001"  # the brand's channel
REVIEWER = "UCtechReviewerChannel00001"  # someone else's channel
SOURCE = Source(name="youtube", kind="youtube", platform="youtube", tier=Tier.MAIN,
                poll_seconds=300)
# T0 (10:00 UTC) is 02:00 in Los Angeles: the quota day is two hours old.
PACIFIC_MIDNIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_busy_hour_of_videos_is_read_over_several_rounds_without_a_gap(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    # 180 videos in the backfill day: more than one round's three pages of 50.
    made = {yt.add_video(REVIEWER, f"Kcell review #{n}", "", ago(clock, minutes=5 * n)).id
            for n in range(1, 181)}
    source = collector(http, yt, clock, channels=(), keywords=("Kcell",), search_minutes=60,
                       daily_quota=1_000_000)
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=60)
    latest = yt.add_video(REVIEWER, "Kcell news", "", ago(clock, minutes=1))
    second = await source.poll(SOURCE, first.cursor)
    clock.advance(minutes=60)
    third = await source.poll(SOURCE, second.cursor)

    videos = [i for polled in (first, second, third) for i in ids(polled)
              if i.startswith("video:")]
    assert len(videos) == len(set(videos))
    assert set(videos) == {f"video:{v}" for v in made | {latest.id}}
    assert len([i for i in ids(first) if i.startswith("video:")]) == 150
    searches = yt.calls_to("search.list")
    assert [c.params.get("pageToken") is None for c in searches] == [
        True, False, False, True, True]
    # The second round reads on below the first's last page; the third from the newest.
    assert searches[3].params["publishedAfter"] == "2026-11-24T09:00:00Z"
    assert searches[3].params["publishedBefore"] == _rfc3339(
        ago(clock, minutes=120 + 5 * 150) + timedelta(seconds=1))
    assert "publishedBefore" not in searches[4].params
    assert searches[4].params["publishedAfter"] == _rfc3339(ago(clock, minutes=120 + 5 + 60))
    assert third.cursor["search"]["newest"] == ago(clock, minutes=61).isoformat()


async def test_a_search_stopped_by_the_quota_keeps_what_it_read_and_goes_on_later(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    comment = yt.add_comment(video.id, "Kcell, no signal", "@aida_k", ago(clock, hours=1))
    made = {yt.add_video(REVIEWER, f"Kcell review #{n}", "", ago(clock, minutes=5 * n)).id
            for n in range(1, 71)}
    # 1,200 units a day: at 02:00 in Los Angeles 150 may be spent — the channel's
    # threads (1) and one page of search (100), not a second page.
    source = collector(http, yt, clock, keywords=("Kcell",), daily_quota=1200)
    first = await source.poll(SOURCE, {})
    clock.advance(hours=12)
    second = await source.poll(SOURCE, first.cursor)

    assert first.note is not None and "the next search fits at" in first.note
    assert ids(first)[0] == comment.id
    videos = [i for polled in (first, second) for i in ids(polled) if i.startswith("video:")]
    assert len([i for i in ids(first) if i.startswith("video:")]) == 50
    assert sorted(videos) == sorted(f"video:{v}" for v in made)


async def test_a_video_the_search_index_takes_in_late_is_still_found(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    source = collector(http, yt, clock, channels=(), keywords=("Kcell",), search_minutes=60)
    yt.add_video(REVIEWER, "Kcell news", "", ago(clock, minutes=10))
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=60)
    # Published before the video the first search found, but searchable only now.
    late = yt.add_video(REVIEWER, "Kcell unboxing", "", ago(clock, minutes=90))

    second = await source.poll(SOURCE, first.cursor)

    assert ids(second) == [f"video:{late.id}"]


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def yt(clock: FakeClock) -> AsyncIterator[FakeYouTube]:
    fake = FakeYouTube(now=clock.now)
    async with fake:
        yield fake


def collector(
    http: aiohttp.ClientSession,
    yt: FakeYouTube,
    clock: FakeClock,
    *,
    channels: tuple[str, ...] = (CHANNEL,),
    keywords: tuple[str, ...] = (),
    token: str | None = None,
    **options: Any,
) -> YoutubeCollector:
    """Build a collector that talks to the fake (no search unless keywords are given)."""
    settings = Options(
        api_url=f"{yt.url}/youtube/v3",  # type: ignore[arg-type]
        key_env="YOUTUBE_API_KEY",
        oauth_token_env="YOUTUBE_TOKEN" if token else None,
        channels=channels,
        **options,
    )
    return YoutubeCollector(http, settings, key=yt.api_key, token=token, keywords=keywords,
                            clock=clock)


def ago(clock: FakeClock, **delta: float) -> datetime:
    return clock.now() - timedelta(**delta)


def ids(polled: Polled) -> list[str]:
    return [m.external_id for m in polled.mentions]


def mention_of(raw: RawMention, clock: FakeClock) -> Mention:
    """Return the stored form of a polled mention, as publish receives it."""
    return Mention(
        source=raw.source, external_id=raw.external_id, platform="youtube", text=raw.text,
        published_at=raw.published_at, collected_at=clock.now(),
        thread_key=raw.thread_id or raw.external_id, author=raw.author, url=raw.url,
        parent_id=raw.parent_id,
    )


# --------------------------------------------------------------------------- comments


async def test_new_comment_threads_on_the_channel_are_found_with_author_text_and_link(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    question = yt.add_comment(video.id, "Kcell & <b>no</b> signal\nhelp", "@aida_k",
                              ago(clock, hours=2))
    answer = yt.add_comment(video.id, "DM us please", "Kcell", ago(clock, hours=1),
                            parent_id=question.id)

    polled = await collector(http, yt, clock).poll(SOURCE, {})

    top, reply = sorted(polled.mentions, key=lambda m: m.published_at)
    aida = channel_id_for("@aida_k")
    assert top == RawMention(
        source="youtube", external_id=question.id, text="Kcell & <b>no</b> signal\nhelp",
        published_at=ago(clock, hours=2),
        url=f"https://www.youtube.com/watch?v={video.id}&lc={question.id}",
        author=Author(id=aida, name="@aida_k", handle="@aida_k",
                      url=f"http://www.youtube.com/channel/{aida}"),
        thread_id=question.id,
    )
    assert (reply.external_id, reply.thread_id, reply.parent_id) == (
        answer.id, question.id, question.id)
    assert reply.author.handle is None and reply.author.name == "Kcell"
    assert reply.url == f"https://www.youtube.com/watch?v={video.id}&lc={answer.id}"


async def test_the_second_poll_returns_only_new_comments(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=5))
    old = yt.add_comment(video.id, "old question", "Ann", ago(clock, days=3))
    yt.add_comment(video.id, "old answer", "Kcell", ago(clock, days=2), parent_id=old.id)
    recent = yt.add_comment(video.id, "recent question", "Bob", ago(clock, hours=1))
    source = collector(http, yt, clock)
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=5)
    new = yt.add_comment(video.id, "new question", "Cem", ago(clock, minutes=1))
    late_reply = yt.add_comment(video.id, "me too", "Dan", ago(clock, minutes=2),
                                parent_id=old.id)

    second = await source.poll(SOURCE, first.cursor)
    third = await source.poll(SOURCE, second.cursor)

    assert ids(first) == [recent.id]  # the last day's comments; older ones are history
    assert sorted(ids(second)) == sorted([new.id, late_reply.id])
    assert third.mentions == []


async def test_comment_threads_are_paged_through_next_page_token(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    comments = [yt.add_comment(video.id, f"#{n}", f"user{n}", ago(clock, minutes=n))
                for n in range(1, 251)]

    polled = await collector(http, yt, clock).poll(SOURCE, {})

    assert sorted(ids(polled)) == sorted(c.id for c in comments)
    calls = yt.calls_to("commentThreads.list")
    assert len(calls) == 3
    assert "pageToken" not in calls[0].params
    assert [c.params["pageToken"] for c in calls[1:]] == [
        calls[0].response["nextPageToken"], calls[1].response["nextPageToken"]]
    assert polled.cursor["quota"] == {"day": "2026-11-25", "used": 3}


# --------------------------------------------------------------------------- busy threads


def busy_thread(yt: FakeYouTube, clock: FakeClock, replies: int) -> tuple[str, str, list[str]]:
    """Seed a video with a question and `replies` replies, a minute apart; return the ids."""
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    question = yt.add_comment(video.id, "Kcell, no signal since Monday", "Ann",
                              ago(clock, hours=2))
    answers = [yt.add_comment(video.id, f"still nothing #{n}", "Ann" if n % 2 else "Bob",
                              ago(clock, minutes=100 - n), parent_id=question.id)
               for n in range(1, replies + 1)]
    return video.id, question.id, [a.id for a in answers]


async def test_replies_past_the_fifth_are_paged_through_comments_list(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    yt.replies_page_size = 4  # YouTube may answer fewer than maxResults a page
    video, question, replies = busy_thread(yt, clock, 12)
    quiet = yt.add_comment(video, "and in Astana?", "Cem", ago(clock, minutes=50))
    yt.add_comment(video, "same", "Dan", ago(clock, minutes=40), parent_id=quiet.id)

    polled = await collector(http, yt, clock).poll(SOURCE, {})

    [thread] = [t for t in yt.calls_to("commentThreads.list")[0].response["items"]
                if t["id"] == question]
    assert thread["snippet"]["totalReplyCount"] == 12 and len(thread["replies"]["comments"]) == 5
    by_id = {m.external_id: m for m in polled.mentions}
    assert len(polled.mentions) == len(by_id) == 1 + 12 + 2
    assert set(replies) <= set(by_id)
    last = by_id[replies[-1]]
    assert (last.text, last.thread_id, last.parent_id) == ("still nothing #12", question,
                                                           question)
    assert last.url == f"https://www.youtube.com/watch?v={video}&lc={replies[-1]}"
    assert last.author.name == "Bob" and last.author.id == channel_id_for("Bob")
    calls = yt.calls_to("comments.list")  # only for the busy thread: the quiet one came whole
    assert [{k: v for k, v in c.params.items() if k != "key"} for c in calls] == [
        {"part": "snippet", "parentId": question, "maxResults": "100",
         "textFormat": "plainText"},
        {"part": "snippet", "parentId": question, "maxResults": "100",
         "textFormat": "plainText", "pageToken": calls[0].response["nextPageToken"]},
    ]
    page = calls[0].response
    assert page["kind"] == "youtube#commentListResponse"
    assert [(i["kind"], i["id"], i["snippet"]["parentId"]) for i in page["items"]] == [
        ("youtube#comment", r, question) for r in reversed(replies[-4:])]  # newest first
    # The second page reached the replies the thread answered: no third call.
    assert replies[4] in [i["id"] for i in calls[1].response["items"]]
    assert "nextPageToken" in calls[1].response
    assert polled.cursor["quota"] == {"day": "2026-11-25", "used": 1 + 2}
    assert yt.quota_by_method["comments.list"] == 2
    assert polled.cursor["places"][f"channel:{CHANNEL}"]["replies"] == {question: 12}


async def test_a_poll_with_no_new_replies_does_not_read_the_busy_thread_again(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    busy_thread(yt, clock, 12)
    source = collector(http, yt, clock)
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=5)

    second = await source.poll(SOURCE, first.cursor)

    assert second.mentions == []
    assert len(yt.calls_to("comments.list")) == 1
    assert second.cursor["quota"]["used"] == 1 + 1 + 1  # the second poll: one page of threads


async def test_a_new_reply_in_a_busy_thread_is_collected_with_one_more_call(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    yt.replies_page_size = 4
    video, question, _ = busy_thread(yt, clock, 12)
    source = collector(http, yt, clock)
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=5)
    thirteenth = yt.add_comment(video, "hello?? 13th time", "Ann", ago(clock, minutes=1),
                                parent_id=question)

    second = await source.poll(SOURCE, first.cursor)
    clock.advance(minutes=5)
    third = await source.poll(SOURCE, second.cursor)

    assert ids(second) == [thirteenth.id]
    assert second.mentions[0].parent_id == question
    assert third.mentions == []
    calls = yt.calls_to("comments.list")
    assert len(calls) == 2 + 1  # the first read, then one page for the 13th
    assert "pageToken" not in calls[-1].params
    assert third.cursor["quota"]["used"] == (1 + 2) + (1 + 1) + 1
    assert yt.quota_used == third.cursor["quota"]["used"]


async def test_a_busy_thread_from_before_the_first_look_is_read_once_and_yields_nothing(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=5))
    old = yt.add_comment(video.id, "old question", "Ann", ago(clock, days=3))
    for n in range(8):
        yt.add_comment(video.id, f"old reply {n}", "Bob", ago(clock, days=2, minutes=-n),
                       parent_id=old.id)
    source = collector(http, yt, clock)

    first = await source.poll(SOURCE, {})
    clock.advance(minutes=5)
    second = await source.poll(SOURCE, first.cursor)

    assert first.mentions == second.mentions == []
    assert len(yt.calls_to("comments.list")) == 1


async def test_the_budget_stops_before_a_page_of_replies_and_the_thread_is_read_later(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    _, _, replies = busy_thread(yt, clock, 7)
    # 800 units a day: at 02:00 in Los Angeles 100 may be spent; 99 already are.
    source = collector(http, yt, clock, daily_quota=800)

    with pytest.raises(SourceUnavailable) as stopped:
        await source.poll(SOURCE, {"quota": {"day": "2026-11-25", "used": 99}})
    clock.advance(hours=1)
    resumed = await source.poll(SOURCE, {"quota": {"day": "2026-11-25", "used": 100}})

    assert "the next page of replies fits at" in str(stopped.value)
    assert stopped.value.retry_after == pytest.approx(108, abs=1)  # 101 of 800: 02:01:48
    assert len(yt.calls_to("comments.list")) == 1  # made by the resumed poll
    assert set(replies) <= set(ids(resumed))
    assert resumed.cursor["quota"]["used"] == 100 + 1 + 1


# --------------------------------------------------------------------------- search


async def test_search_finds_a_new_video_naming_the_brand_as_a_mention(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(REVIEWER, "Kcell & Beeline: who's faster?", "Speed test in Almaty",
                         ago(clock, hours=2), channel_title="Tech Review")
    yt.add_video(REVIEWER, "Kcell in 2019", "", ago(clock, days=9))
    yt.add_video(REVIEWER, "Unboxing a phone", "", ago(clock, hours=1))

    polled = await collector(http, yt, clock, channels=(), keywords=("Kcell", "Кселл")).poll(
        SOURCE, {})

    assert polled.mentions == [RawMention(
        source="youtube", external_id=f"video:{video.id}",
        text="Kcell & Beeline: who's faster?\n\nSpeed test in Almaty",
        published_at=ago(clock, hours=2), url=f"https://www.youtube.com/watch?v={video.id}",
        author=Author(id=REVIEWER, name="Tech Review",
                      url=f"https://www.youtube.com/channel/{REVIEWER}"),
    )]
    [search] = yt.calls_to("search.list")
    assert search.params["q"] == "Kcell|Кселл"
    # The backfill day, and an hour more for the search index's lag.
    assert search.params["publishedAfter"] == "2026-11-24T09:00:00Z"


async def test_comments_on_a_video_found_by_search_are_watched(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(REVIEWER, "Kcell speed test", "", ago(clock, hours=2))
    early = yt.add_comment(video.id, "mine is slow too", "Ann", ago(clock, hours=1))
    source = collector(http, yt, clock, channels=(), keywords=("Kcell",))
    first = await source.poll(SOURCE, {})
    clock.advance(minutes=10)
    later = yt.add_comment(video.id, "same in Astana", "Bob", ago(clock, minutes=1))

    second = await source.poll(SOURCE, first.cursor)

    assert sorted(ids(first)) == sorted([f"video:{video.id}", early.id])
    assert ids(second) == [later.id]
    assert [c.params.get("videoId") for c in yt.calls_to("commentThreads.list")] == [
        video.id, video.id]


async def test_search_runs_at_most_every_search_minutes(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    yt.add_video(REVIEWER, "Kcell speed test", "", ago(clock, hours=2))
    source = collector(http, yt, clock, channels=(), keywords=("Kcell",), search_minutes=60)
    cursor: dict[str, Any] = {}
    searches, found = [], []
    for minutes in (0, 30, 29, 1):
        clock.advance(minutes=minutes)
        polled = await source.poll(SOURCE, cursor)
        cursor = polled.cursor
        searches.append(len(yt.calls_to("search.list")))
        found.append(len(polled.mentions))

    assert searches == [1, 1, 1, 2]
    # From the newest video seen, less an hour for the search index's lag.
    assert yt.calls_to("search.list")[1].params["publishedAfter"] == "2026-11-25T07:00:00Z"
    assert found == [1, 0, 0, 0]  # the second search sees the video again: not news


# --------------------------------------------------------------------------- quota budget


def test_the_budget_lets_the_quota_out_over_the_pacific_day() -> None:
    budget = QuotaBudget(daily=2400, day="2026-11-25", used=0)

    assert budget.allowance(PACIFIC_MIDNIGHT) == 100  # an hour's head start
    assert budget.allowance(PACIFIC_MIDNIGHT + timedelta(hours=11)) == 1200
    assert budget.allowance(PACIFIC_MIDNIGHT + timedelta(hours=23, minutes=30)) == 2400


def test_the_budget_spends_only_what_the_allowance_has_room_for() -> None:
    budget = QuotaBudget(daily=2400, day="2026-11-25", used=250)
    at = PACIFIC_MIDNIGHT + timedelta(hours=2)  # allowance 300

    assert budget.take(50, at)
    assert not budget.take(1, at)
    assert budget.used == 300


def test_a_new_pacific_day_starts_the_budget_afresh() -> None:
    cursor = {"quota": {"day": "2026-11-24", "used": 9000}}
    before = PACIFIC_MIDNIGHT - timedelta(minutes=1)  # 23:59 in Los Angeles

    assert QuotaBudget.load(10_000, cursor, before).used == 9000
    today = QuotaBudget.load(10_000, cursor, PACIFIC_MIDNIGHT)
    assert (today.day, today.used) == ("2026-11-25", 0)
    assert today.saved() == {"day": "2026-11-25", "used": 0}


def test_the_budget_says_when_the_next_call_fits() -> None:
    budget = QuotaBudget(daily=2400, day="2026-11-25", used=300)
    at = PACIFIC_MIDNIGHT + timedelta(hours=2)  # allowance 300: full

    room = budget.next_room(100, at)

    assert room == PACIFIC_MIDNIGHT + timedelta(hours=3)  # 400 units: 4 h less the head start
    assert not budget.take(100, room - timedelta(minutes=1))
    assert budget.take(100, room)


def test_a_call_past_the_days_quota_fits_at_the_next_pacific_midnight() -> None:
    budget = QuotaBudget(daily=2400, day="2026-11-25", used=2350)

    room = budget.next_room(100, PACIFIC_MIDNIGHT + timedelta(hours=23))

    assert room == PACIFIC_MIDNIGHT + timedelta(days=1)


async def test_the_budget_stops_a_poll_part_way_and_the_cursor_keeps_its_place(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    own = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    comment = yt.add_comment(own.id, "Kcell, no signal", "Ann", ago(clock, minutes=30))
    review = yt.add_video(REVIEWER, "Kcell speed test", "", ago(clock, hours=2))
    # 800 units a day: at 02:00 in Los Angeles 100 may be spent, one page and no search.
    source = collector(http, yt, clock, keywords=("Kcell",), daily_quota=800)

    stopped = await source.poll(SOURCE, {})
    clock.advance(hours=1)
    resumed = await source.poll(SOURCE, stopped.cursor)

    assert ids(stopped) == [comment.id]
    assert stopped.note == ("YouTube quota budget: 1 of 800 units used today; "
                            "the next search fits at 10:01 UTC")
    assert stopped.retry_after == pytest.approx(108, abs=1)
    assert stopped.cursor["quota"] == {"day": "2026-11-25", "used": 1}
    assert "at" not in stopped.cursor["search"]
    assert ids(resumed) == [f"video:{review.id}"]
    assert resumed.cursor["quota"]["used"] == 1 + 1 + 100 + 1


async def test_a_poll_with_no_room_in_the_budget_fails_until_there_is(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell, no signal", "Ann", ago(clock, minutes=30))
    spent = {"quota": {"day": "2026-11-25", "used": 100}}

    with pytest.raises(SourceUnavailable) as failed:
        await collector(http, yt, clock, daily_quota=800).poll(SOURCE, spent)

    assert failed.value.retry_after == pytest.approx(108, abs=1)  # 101 of 800 units: 02:01:48
    assert "the next comment threads fits" in str(failed.value)
    assert yt.calls == []


async def test_quota_exceeded_makes_the_source_unavailable_until_pacific_midnight(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell, no signal", "Ann", ago(clock, minutes=30))
    yt.fail_next_quota("commentThreads.list")

    with pytest.raises(SourceUnavailable) as failed:
        await collector(http, yt, clock).poll(SOURCE, {})

    assert failed.value.retry_after == (PACIFIC_MIDNIGHT + timedelta(days=1) - T0).total_seconds()
    assert str(failed.value) == "YouTube: the day's quota is used up until midnight Pacific time"


async def test_a_rate_limited_answer_makes_the_source_wait_as_told(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.fail_next("commentThreads.list", 429, retry_after=7)

    with pytest.raises(SourceUnavailable) as failed:
        await collector(http, yt, clock).poll(SOURCE, {})

    assert failed.value.retry_after == 7.0
    assert str(failed.value) == "YouTube commentThreads.list: rate limited (HTTP 429), retry in 7 s"


# --------------------------------------------------------------------------- replies


async def test_a_reply_to_a_reply_goes_under_the_threads_top_comment(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    question = yt.add_comment(video.id, "Kcell?", "Ann", ago(clock, hours=2))
    follow_up = yt.add_comment(video.id, "hello??", "Ann", ago(clock, hours=1),
                               parent_id=question.id)
    [_, raw] = sorted((await collector(http, yt, clock).poll(SOURCE, {})).mentions,
                      key=lambda m: m.published_at)
    assert raw.external_id == follow_up.id

    published = await collector(http, yt, clock, token=yt.oauth_token).publish(
        SOURCE, mention_of(raw, clock), "Sorry, fixed now")

    [call] = yt.calls_to("comments.insert")
    assert call.params["authorization"] == f"Bearer {yt.oauth_token}"
    assert call.params["body"] == {"snippet": {"parentId": question.id,
                                               "textOriginal": "Sorry, fixed now"}}
    [reply] = yt.inserted_comments
    assert (reply.parent_id, reply.text) == (question.id, "Sorry, fixed now")
    assert published.external_id == reply.id
    assert published.url == f"https://www.youtube.com/watch?v={video.id}&lc={reply.id}"


async def test_a_reply_to_a_top_level_comment_goes_under_it(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    question = yt.add_comment(video.id, "Kcell?", "Ann", ago(clock, hours=2))
    [raw] = (await collector(http, yt, clock).poll(SOURCE, {})).mentions

    await collector(http, yt, clock, token=yt.oauth_token).publish(
        SOURCE, mention_of(raw, clock), "Hi Ann")

    [reply] = yt.inserted_comments
    assert (reply.parent_id, reply.video_id) == (question.id, video.id)


async def test_a_video_mention_is_answered_with_a_new_comment_thread(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(REVIEWER, "Kcell speed test", "", ago(clock, hours=2))
    found = await collector(http, yt, clock, channels=(), keywords=("Kcell",)).poll(SOURCE, {})
    [raw] = [m for m in found.mentions if m.external_id.startswith("video:")]

    published = await collector(http, yt, clock, token=yt.oauth_token).publish(
        SOURCE, mention_of(raw, clock), "Thanks for testing us!")

    [call] = yt.calls_to("commentThreads.insert")
    assert call.params["authorization"] == f"Bearer {yt.oauth_token}"
    assert call.params["body"]["snippet"]["videoId"] == video.id
    [thread] = yt.threads(video.id)
    assert (thread.text, thread.author_channel_id) == ("Thanks for testing us!",
                                                       yt.oauth_channel_id)
    assert published.external_id == thread.id
    assert published.url == f"https://www.youtube.com/watch?v={video.id}&lc={thread.id}"


async def test_a_published_reply_comes_back_from_the_channel_under_the_id_publish_gave(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell?", "Ann", ago(clock, hours=2))
    source = collector(http, yt, clock, token=yt.oauth_token)
    first = await source.poll(SOURCE, {})

    published = await source.publish(SOURCE, mention_of(first.mentions[0], clock), "Hi Ann")
    clock.advance(minutes=5)
    echo = await source.poll(SOURCE, first.cursor)

    assert ids(echo) == [published.external_id]
    assert echo.mentions[0].parent_id == first.mentions[0].external_id


async def test_publish_without_the_oauth_token_fails(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell?", "Ann", ago(clock, hours=2))
    source = collector(http, yt, clock)
    [raw] = (await source.poll(SOURCE, {})).mentions

    with pytest.raises(PublishFailed, match="no oauth_token_env"):
        await source.publish(SOURCE, mention_of(raw, clock), "Hi")

    assert not source.can_publish
    assert yt.calls_to("comments.insert") == []


async def test_publish_refused_by_youtube_fails_with_its_reason(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock
) -> None:
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell?", "Ann", ago(clock, hours=2))
    [raw] = (await collector(http, yt, clock).poll(SOURCE, {})).mentions

    with pytest.raises(PublishFailed, match=r"comments.insert: HTTP 401: Request had invalid"):
        await collector(http, yt, clock, token="ya29.expired").publish(
            SOURCE, mention_of(raw, clock), "Hi")

    assert yt.inserted_comments == []


# --------------------------------------------------------------------------- collecting


async def _count(storage: Storage, table: Any) -> int:
    async with storage.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_cursors_survive_a_restart_nothing_ingested_twice_nothing_skipped(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock, storage: Storage
) -> None:
    team = make_team(sources=(SOURCE,))
    deps: dict[str, Any] = {"uow": storage.uow, "pipeline": Pipeline(team, clock=clock),
                            "clock": clock}
    own = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(own.id, "Kcell, no signal in Almaty", "Ann", ago(clock, hours=2))
    yt.add_comment(own.id, "Kcell, the app crashes", "Bob", ago(clock, hours=1))
    review = yt.add_video(REVIEWER, "Kcell speed test", "", ago(clock, hours=3))

    def started() -> YoutubeCollector:
        return collector(http, yt, clock, keywords=("Kcell",))

    first = await collecting.poll(SOURCE, started(), **deps)
    clock.advance(minutes=6)
    yt.add_comment(own.id, "Kcell, refund please", "Cem", ago(clock, minutes=2))
    yt.add_comment(review.id, "Kcell was faster for me", "Dan", ago(clock, minutes=1))
    second = await collecting.poll(SOURCE, started(), **deps)
    clock.advance(minutes=6)
    third = await collecting.poll(SOURCE, started(), **deps)

    assert (first.error, first.found, first.created) == (None, 3, 3)
    assert (second.error, second.found, second.created) == (None, 2, 2)
    assert [r.outcome for r in second.results] == [Outcome.CREATED] * 2
    assert (third.error, third.found) == (None, 0)
    assert await _count(storage, cases_table) == 5
    assert await _count(storage, mentions_table) == 5
    assert len(yt.calls_to("search.list")) == 1  # the search waits its hour across restarts


async def test_every_reply_of_a_busy_thread_becomes_a_mention_once(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock, storage: Storage
) -> None:
    pipeline = Pipeline(make_team(sources=(SOURCE,)), clock=clock)
    deps: dict[str, Any] = {"uow": storage.uow, "pipeline": pipeline, "clock": clock}
    yt.replies_page_size = 4
    video, question, _ = busy_thread(yt, clock, 12)

    first = await collecting.poll(SOURCE, collector(http, yt, clock), **deps)
    clock.advance(minutes=6)
    second = await collecting.poll(SOURCE, collector(http, yt, clock), **deps)
    clock.advance(minutes=6)
    yt.add_comment(video, "13th: anyone?", "Ann", ago(clock, minutes=1), parent_id=question)
    third = await collecting.poll(SOURCE, collector(http, yt, clock), **deps)

    assert (first.error, first.found) == (None, 1 + 12)
    assert (second.error, second.found) == (None, 0)
    assert (third.error, third.found) == (None, 1)
    assert await _count(storage, mentions_table) == 1 + 12 + 1
    assert len(yt.calls_to("comments.list")) == 2 + 0 + 1
    async with storage.uow() as uow:
        state = await uow.sources.get("youtube")
    assert state.cursor["quota"]["used"] == yt.quota_used == (1 + 2) + 1 + (1 + 1)


async def test_a_poll_refused_for_quota_is_next_tried_at_pacific_midnight(
    http: aiohttp.ClientSession, yt: FakeYouTube, clock: FakeClock, storage: Storage
) -> None:
    pipeline = Pipeline(make_team(sources=(SOURCE,)), clock=clock)
    deps: dict[str, Any] = {"uow": storage.uow, "pipeline": pipeline, "clock": clock}
    video = yt.add_video(CHANNEL, "New tariffs", "", ago(clock, days=3))
    yt.add_comment(video.id, "Kcell, no signal", "Ann", ago(clock, minutes=30))
    yt.fail_next_quota("commentThreads.list")

    refused = await collecting.poll(SOURCE, collector(http, yt, clock), **deps)

    assert refused.error == "YouTube: the day's quota is used up until midnight Pacific time"
    assert refused.next_poll_at == PACIFIC_MIDNIGHT + timedelta(days=1)
    async with storage.uow() as uow:
        state = await uow.sources.get("youtube")
    assert (state.failures, state.cursor) == (1, {})
