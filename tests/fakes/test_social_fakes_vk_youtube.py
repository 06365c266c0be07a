"""Self-tests of the VK and YouTube fakes, spoken to over HTTP with aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.fakes.server import ManualClock
from tests.fakes.vk import API_VERSION, FakeVK, matches_query
from tests.fakes.youtube import FakeYouTube, render_text_display

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BRAND = -229_000_001  # the brand's VK community wall
CHANNEL = "UCsocialcareBrandChannel01"

# Keys of the samples (../shared/samples), which the fakes' answers must carry.
VK_SEARCH_KEYS = {"items", "next_from", "count", "total_count"}
VK_POST_KEYS = {"id", "from_id", "owner_id", "date", "post_type", "text", "comments", "likes"}
VK_POST_KEYS |= {"reposts"}
YT_THREAD_LIST_KEYS = {"kind", "etag", "nextPageToken", "pageInfo", "items"}
YT_THREAD_SNIPPET_KEYS = {"videoId", "topLevelComment", "canReply", "totalReplyCount", "isPublic"}
YT_COMMENT_SNIPPET_KEYS = {
    "authorDisplayName",
    "authorProfileImageUrl",
    "authorChannelUrl",
    "authorChannelId",
    "videoId",
    "textDisplay",
    "textOriginal",
    "canRate",
    "viewerRating",
    "likeCount",
    "publishedAt",
    "updatedAt",
}
YT_SEARCH_KEYS = {"kind", "etag", "nextPageToken", "regionCode", "pageInfo", "items"}
YT_SEARCH_SNIPPET_KEYS = {
    "publishedAt",
    "channelId",
    "title",
    "description",
    "thumbnails",
    "channelTitle",
    "liveBroadcastContent",
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Open a client session for one test."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        yield session


@pytest.fixture
async def vk() -> AsyncIterator[FakeVK]:
    """Run a FakeVK whose "now" is T0, rate limits off (one test below pins them)."""
    fake = FakeVK(now=lambda: T0, rate_limits=False)
    async with fake:
        yield fake


@pytest.fixture
async def yt() -> AsyncIterator[FakeYouTube]:
    """Run a FakeYouTube whose "now" is T0."""
    fake = FakeYouTube(now=lambda: T0)
    async with fake:
        yield fake


async def vk_call(
    http: aiohttp.ClientSession,
    vk: FakeVK,
    method: str,
    *,
    post: bool = False,
    **params: Any,
) -> tuple[int, Any]:
    """Call a VK method with the default token and v=5.199 (a None param is left out)."""
    fields = {"access_token": vk.token, "v": API_VERSION, **params}
    data = {key: str(value) for key, value in fields.items() if value is not None}
    url = f"{vk.url}/method/{method}"
    request = http.post(url, data=data) if post else http.get(url, params=data)
    async with request as response:
        if response.content_type != "application/json":
            return response.status, await response.text()
        return response.status, await response.json()


async def yt_get(
    http: aiohttp.ClientSession, yt: FakeYouTube, resource: str, **params: Any
) -> tuple[int, Any]:
    """GET a YouTube resource with the API key (key=None leaves it out)."""
    fields = {"key": yt.api_key, **params}
    query = {key: str(value) for key, value in fields.items() if value is not None}
    async with http.get(f"{yt.url}/youtube/v3/{resource}", params=query) as response:
        return response.status, await response.json()


async def yt_insert_reply(
    http: aiohttp.ClientSession, yt: FakeYouTube, parent_id: str, text: str, **headers: str
) -> tuple[int, Any]:
    """POST comments.insert with the OAuth bearer (override with Authorization=...)."""
    sent = {"Authorization": f"Bearer {yt.oauth_token}", **headers}
    body = {"snippet": {"parentId": parent_id, "textOriginal": text}}
    url = f"{yt.url}/youtube/v3/comments"
    async with http.post(url, params={"part": "snippet"}, json=body, headers=sent) as response:
        return response.status, await response.json()


# --------------------------------------------------------------------------- VK


async def test_vk_newsfeed_search_answers_the_sample_shape_with_profiles_and_groups(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    vk.add_group(-BRAND, "Kaspi.kz", screen_name="kaspikz")
    vk.add_profile(7001, "Айгерим", "Сапарова", screen_name="aigerim")
    on_user_wall = vk.add_post(7001, "Kaspi перевод завис", T0 - timedelta(minutes=5))
    by_user = vk.add_post(BRAND, "Где мой KASPI red?", T0 - timedelta(hours=1), from_id=7001)
    vk.add_post(BRAND, "Акция недели", T0 - timedelta(minutes=1))

    status, body = await vk_call(http, vk, "newsfeed.search", q="kaspi", extended=1)

    assert status == 200
    result = body["response"]
    assert VK_SEARCH_KEYS - {"next_from"} <= set(result)
    assert "next_from" not in result  # one page only
    assert [(i["owner_id"], i["id"]) for i in result["items"]] == [
        (7001, on_user_wall.id),
        (BRAND, by_user.id),
    ]
    item = result["items"][1]
    assert set(item) >= VK_POST_KEYS
    assert item["from_id"] == 7001 and item["date"] == by_user.date
    assert item["comments"]["count"] == 0 and item["likes"]["count"] == 0
    assert result["count"] == 2 and result["total_count"] == 2
    assert [p["screen_name"] for p in result["profiles"]] == ["aigerim"]
    assert [(g["id"], g["name"]) for g in result["groups"]] == [(-BRAND, "Kaspi.kz")]
    assert by_user.url == f"https://vk.com/wall{BRAND}_{by_user.id}"
    assert vk.calls_to("newsfeed.search")[0].params["q"] == "kaspi"


def test_vk_query_matches_words_and_or_alternatives_case_insensitively() -> None:
    assert matches_query("kaspi", "Мой KASPI gold")
    assert matches_query("каспи банк", "Банк Каспи не отвечает")
    assert not matches_query("каспи банк", "Каспи не отвечает")
    assert matches_query("halyk OR kaspi", "халык и Kaspi")
    assert not matches_query("halyk OR forte", "Kaspi")
    assert not matches_query("", "anything")


async def test_vk_search_pages_by_next_from_without_gaps_or_repeats(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    posts = [vk.add_post(BRAND, f"kaspi #{n}", T0 - timedelta(minutes=n)) for n in range(1, 8)]
    vk.add_post(BRAND, "same minute, other words", T0 - timedelta(minutes=3))
    seen: list[int] = []
    start_from = None
    pages = 0
    while True:
        _, body = await vk_call(
            http, vk, "newsfeed.search", q="kaspi", count=3, start_from=start_from
        )
        result = body["response"]
        seen += [item["id"] for item in result["items"]]
        pages += 1
        if pages == 1:
            # A post arriving mid-walk is newer than the cursor: it must not shift the pages.
            vk.add_post(BRAND, "kaspi brand new", T0)
        start_from = result.get("next_from")
        if start_from is None:
            break
    assert pages == 3
    assert seen == [p.id for p in posts]  # newest first, all of them, each once
    assert len(set(seen)) == len(seen)


async def test_vk_search_keeps_posts_since_start_time_and_defaults_to_the_last_day(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    recent = vk.add_post(BRAND, "kaspi recent", T0 - timedelta(hours=2))
    old = vk.add_post(BRAND, "kaspi old", T0 - timedelta(days=3))
    future = vk.add_post(BRAND, "kaspi scheduled", T0 + timedelta(hours=1))

    _, default = await vk_call(http, vk, "newsfeed.search", q="kaspi")
    since = int((T0 - timedelta(days=4)).timestamp())
    _, wide = await vk_call(http, vk, "newsfeed.search", q="kaspi", start_time=since)
    until = int((T0 - timedelta(days=1)).timestamp())
    _, window = await vk_call(
        http, vk, "newsfeed.search", q="kaspi", start_time=since, end_time=until
    )

    assert [i["id"] for i in default["response"]["items"]] == [recent.id]
    assert [i["id"] for i in wide["response"]["items"]] == [recent.id, old.id]
    assert [i["id"] for i in window["response"]["items"]] == [old.id]
    assert default["response"]["total_count"] == 3  # any time, vs. count in the window
    assert future.id not in [i["id"] for i in wide["response"]["items"]]


async def test_vk_wall_get_and_get_comments_with_threads_likes_and_paging(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    vk.add_profile(7001, "Айгерим", "Сапарова")
    post = vk.add_post(BRAND, "Новый тариф", T0 - timedelta(hours=3), likes=4)
    older = vk.add_post(BRAND, "Старый пост", T0 - timedelta(hours=5))
    first = vk.add_comment(BRAND, post.id, "Не работает", T0 - timedelta(hours=2), 7001)
    reply = vk.add_comment(
        BRAND, post.id, "Напишите в ЛС", T0 - timedelta(hours=1), BRAND, first.id
    )
    nested = vk.add_comment(BRAND, post.id, "Написала", T0 - timedelta(minutes=30), 7001, reply.id)
    second = vk.add_comment(BRAND, post.id, "И у меня", T0 - timedelta(minutes=20), 7002, likes=2)

    _, wall = await vk_call(http, vk, "wall.get", owner_id=BRAND, count=1, offset=1)
    assert wall["response"]["count"] == 2
    assert [i["id"] for i in wall["response"]["items"]] == [older.id]

    _, body = await vk_call(
        http,
        vk,
        "wall.getComments",
        owner_id=BRAND,
        post_id=post.id,
        thread_items_count=10,
        need_likes=1,
        extended=1,
    )
    result = body["response"]
    assert result["count"] == 4 and result["current_level_count"] == 2
    top = result["items"][0]
    assert {"id", "from_id", "date", "text", "post_id", "owner_id", "parents_stack"} <= set(top)
    assert (top["id"], top["parents_stack"], top["post_id"]) == (first.id, [], post.id)
    assert top["thread"]["count"] == 2
    thread = top["thread"]["items"]
    assert [(c["id"], c["parents_stack"]) for c in thread] == [
        (reply.id, [first.id]),
        (nested.id, [first.id]),  # a reply to a reply stays in the top comment's thread
    ]
    assert (thread[1]["reply_to_comment"], thread[1]["reply_to_user"]) == (reply.id, BRAND)
    assert result["items"][1]["likes"]["count"] == second.likes
    assert {p["id"] for p in result["profiles"]} == {7001, 7002}
    assert [g["id"] for g in result["groups"]] == [-BRAND]

    _, desc = await vk_call(
        http, vk, "wall.getComments", owner_id=BRAND, post_id=post.id, sort="desc", count=1
    )
    assert [c["id"] for c in desc["response"]["items"]] == [second.id]
    assert desc["response"]["items"][0]["thread"]["items"] == []  # thread_items_count=0
    _, replies = await vk_call(
        http, vk, "wall.getComments", owner_id=BRAND, post_id=post.id, comment_id=first.id
    )
    assert [c["id"] for c in replies["response"]["items"]] == [reply.id, nested.id]

    _, wall_again = await vk_call(http, vk, "wall.get", owner_id=BRAND)
    assert wall_again["response"]["items"][0]["comments"]["count"] == 4


async def test_vk_create_comment_is_recorded_and_a_guid_is_not_posted_twice(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    post = vk.add_post(BRAND, "Пост", T0 - timedelta(hours=1))
    question = vk.add_comment(BRAND, post.id, "Где заказ?", T0 - timedelta(minutes=9), 7001)

    status, top = await vk_call(
        http, vk, "wall.createComment", post=True, owner_id=BRAND, post_id=post.id, message="Ок"
    )
    _, answer = await vk_call(
        http,
        vk,
        "wall.createComment",
        post=True,
        owner_id=BRAND,
        post_id=post.id,
        message="Здравствуйте! Проверим заказ.",
        reply_to_comment=question.id,
        from_group=-BRAND,
        guid="case-42",
    )
    _, again = await vk_call(
        http,
        vk,
        "wall.createComment",
        owner_id=BRAND,
        post_id=post.id,
        message="Здравствуйте! Проверим заказ.",
        reply_to_comment=question.id,
        from_group=-BRAND,
        guid="case-42",
    )

    assert status == 200
    assert top == {"response": {"comment_id": top["response"]["comment_id"], "parents_stack": []}}
    assert answer["response"]["parents_stack"] == [question.id]
    assert again == answer
    created = vk.created_comments
    assert [(c.text, c.from_id, c.reply_to_comment) for c in created] == [
        ("Ок", vk.tokens[vk.token], None),
        ("Здравствуйте! Проверим заказ.", BRAND, question.id),
    ]
    assert created[1].at == T0 and created[1].reply_to_user == 7001
    assert created[1].id == answer["response"]["comment_id"]
    assert [c.id for c in vk.comments(BRAND, post.id)] == [question.id, *(c.id for c in created)]


async def test_vk_lost_create_comment_answer_is_retried_safely_with_its_guid(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    post = vk.add_post(BRAND, "Пост", T0 - timedelta(hours=1))
    vk.timeout_next("wall.createComment", delay=0.05, applied=True)
    params = {"owner_id": BRAND, "post_id": post.id, "message": "Ответ", "guid": "case-7"}

    with pytest.raises(aiohttp.ClientError):
        await vk_call(http, vk, "wall.createComment", post=True, **params)
    _, retried = await vk_call(http, vk, "wall.createComment", post=True, **params)

    assert [c.id for c in vk.created_comments] == [retried["response"]["comment_id"]]
    logged = vk.calls_to("wall.createComment")
    assert [(c.fault, c.applied) for c in logged] == [("lost_response", True), (None, True)]


async def test_vk_auth_version_and_parameter_errors_come_in_vk_envelope(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    _, missing = await vk_call(http, vk, "newsfeed.search", q="kaspi", access_token=None)
    status, wrong = await vk_call(http, vk, "newsfeed.search", q="kaspi", access_token="nope")
    _, no_version = await vk_call(http, vk, "wall.get", owner_id=BRAND, v=None)
    _, unknown = await vk_call(http, vk, "wall.delete")
    _, no_post = await vk_call(http, vk, "wall.getComments", owner_id=BRAND, post_id=99)
    _, not_int = await vk_call(http, vk, "wall.get", owner_id="brand")

    assert status == 200
    assert missing["error"]["error_code"] == 5
    assert missing["error"]["error_msg"] == "User authorization failed: no access_token passed."
    assert wrong["error"]["error_code"] == 5
    assert wrong["error"]["error_msg"].startswith("User authorization failed: invalid access_token")
    assert wrong["error"]["request_params"] == [
        {"key": "v", "value": API_VERSION},
        {"key": "q", "value": "kaspi"},
        {"key": "method", "value": "newsfeed.search"},
        {"key": "oauth", "value": "1"},
    ]
    assert no_version["error"]["error_code"] == 8
    assert unknown["error"] == {
        "error_code": 3,
        "error_msg": "Unknown method passed",
        "request_params": unknown["error"]["request_params"],
    }
    assert (no_post["error"]["error_code"], not_int["error"]["error_code"]) == (100, 100)
    assert [c.response for c in vk.calls_to("newsfeed.search")] == [missing, wrong]


async def test_vk_more_than_three_calls_a_second_per_token_answer_error_6() -> None:
    clock = ManualClock()
    async with aiohttp.ClientSession() as http, FakeVK(clock=clock, now=lambda: T0) as fake:
        assert isinstance(fake, FakeVK)
        fake.add_token("second-token", 502)
        codes = []
        for _ in range(4):
            _, body = await vk_call(http, fake, "wall.get", owner_id=BRAND)
            codes.append(body.get("error", {}).get("error_code"))
        _, other = await vk_call(
            http, fake, "wall.get", owner_id=BRAND, access_token="second-token"
        )
        clock.advance(1.0)
        _, later = await vk_call(http, fake, "wall.get", owner_id=BRAND)
        fake.rate_limits_enabled = False
        bursts = [await vk_call(http, fake, "wall.get", owner_id=BRAND) for _ in range(5)]

    assert codes == [None, None, None, 6]
    assert "response" in other and "response" in later
    assert all("response" in body for _, body in bursts)
    limited = [c for c in fake.calls if c.fault == "ratelimited"]
    assert len(limited) == 1
    assert limited[0].response["error"]["error_msg"] == "Too many requests per second"


async def test_vk_injected_errors_6_9_29_and_5xx_are_not_applied(
    http: aiohttp.ClientSession, vk: FakeVK
) -> None:
    post = vk.add_post(BRAND, "Пост", T0 - timedelta(hours=1))
    create = {"owner_id": BRAND, "post_id": post.id, "message": "Ответ"}
    vk.fail_next_vk("wall.createComment", 9)
    vk.fail_next_vk("wall.createComment", 29)
    vk.fail_next_vk("newsfeed.search", 6)
    vk.fail_next("wall.createComment", 502)
    vk.fail_next("wall.createComment", 429)

    _, flood = await vk_call(http, vk, "wall.createComment", **create)
    _, capped = await vk_call(http, vk, "wall.createComment", **create)
    _, too_many = await vk_call(http, vk, "newsfeed.search", q="x")
    status, page = await vk_call(http, vk, "wall.createComment", **create)
    _, chaos_429 = await vk_call(http, vk, "wall.createComment", **create)
    _, ok = await vk_call(http, vk, "wall.createComment", **create)

    assert (flood["error"]["error_code"], flood["error"]["error_msg"]) == (9, "Flood control")
    assert (capped["error"]["error_code"], capped["error"]["error_msg"]) == (
        29,
        "Rate limit reached",
    )
    assert too_many["error"]["error_code"] == 6
    assert {"key": "q", "value": "x"} in too_many["error"]["request_params"]
    assert status == 502 and "502 Bad Gateway" in page
    assert chaos_429["error"]["error_code"] == 6
    assert "comment_id" in ok["response"]
    assert len(vk.created_comments) == 1
    assert [c.applied for c in vk.calls_to("wall.createComment")] == [False] * 4 + [True]


# --------------------------------------------------------------------------- YouTube


async def test_youtube_comment_threads_answer_the_sample_shape_and_html_text(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор", "", T0 - timedelta(days=1))
    text = "Lot's of <good> & bad\nsee https://kaspi.kz/help #KaspiGold"
    comment = yt.add_comment(video.id, text, "Айдана", T0 - timedelta(hours=1), like_count=3)

    status, body = await yt_get(http, yt, "commentThreads", part="snippet", videoId=video.id)
    _, plain = await yt_get(
        http, yt, "commentThreads", part="snippet", videoId=video.id, textFormat="plainText"
    )

    assert status == 200
    assert set(body) == YT_THREAD_LIST_KEYS - {"nextPageToken"}
    assert body["kind"] == "youtube#commentThreadListResponse"
    assert body["pageInfo"] == {"totalResults": 1, "resultsPerPage": 20}
    thread = body["items"][0]
    assert (thread["kind"], thread["id"]) == ("youtube#commentThread", comment.id)
    assert set(thread["snippet"]) >= YT_THREAD_SNIPPET_KEYS
    top = thread["snippet"]["topLevelComment"]
    assert (top["kind"], top["id"]) == ("youtube#comment", comment.id)
    snippet = top["snippet"]
    assert set(snippet) >= YT_COMMENT_SNIPPET_KEYS
    assert snippet["textOriginal"] == text
    assert snippet["textDisplay"] == (
        "Lot&#39;s of &lt;good&gt; &amp; bad<br />see "
        '<a href="https://kaspi.kz/help">https://kaspi.kz/help</a> '
        '<a href="http://www.youtube.com/results?search_query=%23KaspiGold">#KaspiGold</a>'
    )
    assert snippet["authorDisplayName"] == "Айдана"
    channel_id = snippet["authorChannelId"]["value"]
    assert channel_id.startswith("UC") and len(channel_id) == 24
    assert snippet["authorChannelUrl"] == f"http://www.youtube.com/channel/{channel_id}"
    assert (snippet["likeCount"], snippet["videoId"]) == (3, video.id)
    assert snippet["publishedAt"] == "2026-11-25T09:00:00.000Z" == snippet["updatedAt"]
    assert plain["items"][0]["snippet"]["topLevelComment"]["snippet"]["textDisplay"] == text
    assert render_text_display("a&b") == "a&amp;b"


async def test_youtube_comment_threads_page_without_gaps_or_repeats(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор", "", T0 - timedelta(days=1))
    comments = [
        yt.add_comment(
            video.id, f"comment {n}", f"user{n}", T0 - timedelta(minutes=n), like_count=n % 3
        )
        for n in range(1, 8)
    ]

    async def walk(order: str) -> list[str]:
        seen: list[str] = []
        token = None
        while True:
            _, body = await yt_get(
                http,
                yt,
                "commentThreads",
                part="snippet",
                videoId=video.id,
                maxResults=3,
                order=order,
                pageToken=token,
            )
            seen += [item["id"] for item in body["items"]]
            if len(seen) == 3 and order == "time":
                # A comment arriving mid-walk is newer than the cursor: no shift, no repeat.
                yt.add_comment(video.id, "late", "late", T0)
            token = body.get("nextPageToken")
            if token is None:
                return seen

    by_time = await walk("time")
    by_relevance = await walk("relevance")

    assert by_time == [c.id for c in comments]
    assert len(by_relevance) == 8 and len(set(by_relevance)) == 8
    likes = [yt.comment(i).like_count for i in by_relevance]
    assert likes == sorted(likes, reverse=True)
    status, bad = await yt_get(
        http, yt, "commentThreads", part="snippet", videoId=video.id, pageToken="%%%"
    )
    assert status == 400 and bad["error"]["errors"][0]["reason"] == "invalidPageToken"
    assert yt.quota_used == len(yt.calls_to("commentThreads.list")) == 7


async def test_youtube_channel_threads_replies_and_list_errors(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    first = yt.add_video(CHANNEL, "Первое", "", T0 - timedelta(days=2))
    second = yt.add_video(CHANNEL, "Второе", "", T0 - timedelta(days=1))
    closed = yt.add_video(CHANNEL, "Без комментариев", "", T0, comments_disabled=True)
    a = yt.add_comment(first.id, "a", "Ann", T0 - timedelta(hours=3))
    b = yt.add_comment(second.id, "b", "Bob", T0 - timedelta(hours=2))
    answer = yt.add_comment(first.id, "ответ", "Brand", T0 - timedelta(hours=1), parent_id=a.id)

    _, body = await yt_get(
        http,
        yt,
        "commentThreads",
        part="snippet,replies",
        allThreadsRelatedToChannelId=CHANNEL,
    )
    assert [t["id"] for t in body["items"]] == [b.id, a.id]
    with_reply = body["items"][1]
    assert with_reply["snippet"]["totalReplyCount"] == 1
    reply = with_reply["replies"]["comments"][0]
    assert (reply["id"], reply["snippet"]["parentId"]) == (answer.id, a.id)
    assert "replies" not in body["items"][0]

    cases = {
        "videoNotFound": {"videoId": "nonexistent"},
        "commentsDisabled": {"videoId": closed.id},
        "channelNotFound": {"allThreadsRelatedToChannelId": "UCnobody"},
        "missingRequiredParameter": {},
        "invalidParameter": {"videoId": first.id, "maxResults": 101},
    }
    for reason, params in cases.items():
        status, error = await yt_get(http, yt, "commentThreads", part="snippet", **params)
        assert error["error"]["errors"][0]["reason"] == reason, reason
        assert error["error"]["code"] == status
    status, no_part = await yt_get(http, yt, "commentThreads", videoId=first.id)
    assert status == 400 and no_part["error"]["errors"][0]["reason"] == "required"


async def test_youtube_search_escapes_titles_filters_by_date_and_pages(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    yt.add_video(CHANNEL, "Kaspi & Halyk: what's new", "Tom's review", T0 - timedelta(days=1))
    for n in range(2, 7):
        yt.add_video(CHANNEL, f"Kaspi news {n}", "", T0 - timedelta(days=n), channel_title="Brand")
    yt.add_video(CHANNEL, "Old kaspi", "", T0 - timedelta(days=30))
    yt.add_video(CHANNEL, "Unrelated", "", T0 - timedelta(hours=1))
    after = (T0 - timedelta(days=10)).isoformat().replace("+00:00", "Z")

    seen: list[str] = []
    token = None
    pages = []
    while True:
        _, body = await yt_get(
            http,
            yt,
            "search",
            part="snippet",
            q="kaspi",
            type="video",
            order="date",
            publishedAfter=after,
            maxResults=4,
            pageToken=token,
        )
        pages.append(body)
        seen += [item["id"]["videoId"] for item in body["items"]]
        token = body.get("nextPageToken")
        if token is None:
            break

    first = pages[0]
    assert set(first) == YT_SEARCH_KEYS and first["kind"] == "youtube#searchListResponse"
    assert first["pageInfo"] == {"totalResults": 6, "resultsPerPage": 4}
    item = first["items"][0]
    assert item["kind"] == "youtube#searchResult" and item["id"]["kind"] == "youtube#video"
    assert set(item["snippet"]) >= YT_SEARCH_SNIPPET_KEYS
    assert item["snippet"]["title"] == "Kaspi &amp; Halyk: what&#39;s new"
    assert item["snippet"]["description"] == "Tom's review"
    assert set(item["snippet"]["thumbnails"]) == {"default", "medium", "high"}
    assert first["nextPageToken"] == "CAQQAA"  # offset 4, encoded like YouTube's tokens
    assert "prevPageToken" in pages[1]
    assert len(seen) == 6 == len(set(seen))
    titles = [yt.videos[v].title for v in seen]
    assert titles == ["Kaspi & Halyk: what's new", *(f"Kaspi news {n}" for n in range(2, 7))]
    assert yt.quota_used == 200 and yt.quota_by_method["search.list"] == 200


async def test_youtube_comments_insert_needs_oauth_and_is_recorded(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор", "", T0 - timedelta(days=1))
    question = yt.add_comment(video.id, "Где заказ?", "Айдана", T0 - timedelta(hours=1))

    status, created = await yt_insert_reply(http, yt, question.id, "Здравствуйте! Напишите нам.")
    wrong, denied = await yt_insert_reply(
        http, yt, question.id, "x", Authorization="Bearer expired"
    )
    url = f"{yt.url}/youtube/v3/comments"
    body = {"snippet": {"parentId": question.id, "textOriginal": "x"}}
    params = {"part": "snippet", "key": yt.api_key}
    async with http.post(url, params=params, json=body) as response:
        key_only, login = response.status, await response.json()
    _, no_parent = await yt_insert_reply(http, yt, "", "x")
    missing, unknown = await yt_insert_reply(http, yt, "UgzNoSuchComment4AaABAg", "x")
    _, threads = await yt_get(http, yt, "commentThreads", part="snippet,replies", videoId=video.id)

    assert status == 200
    assert created["kind"] == "youtube#comment"
    assert created["id"].startswith(question.id + ".")
    snippet = created["snippet"]
    assert snippet["parentId"] == question.id
    assert snippet["textOriginal"] == "Здравствуйте! Напишите нам."
    assert snippet["authorChannelId"]["value"] == yt.oauth_channel_id
    assert snippet["publishedAt"] == "2026-11-25T10:00:00.000Z"
    assert [(c.id, c.parent_id) for c in yt.inserted_comments] == [(created["id"], question.id)]
    assert wrong == 401 and denied["error"]["status"] == "UNAUTHENTICATED"
    assert denied["error"]["errors"][0]["reason"] == "authError"
    assert key_only == 401 and login["error"]["errors"][0]["reason"] == "required"
    assert no_parent["error"]["errors"][0]["reason"] == "parentIdMissing"
    assert missing == 404 and unknown["error"]["errors"][0]["reason"] == "parentCommentNotFound"
    assert threads["items"][0]["snippet"]["totalReplyCount"] == 1
    assert threads["items"][0]["replies"]["comments"][0]["id"] == created["id"]
    assert len(yt.inserted_comments) == 1
    assert yt.quota_by_method["comments.insert"] == 150  # three calls got past the front end


async def test_youtube_comment_threads_insert_starts_a_thread_on_a_video(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор Kaspi", "", T0 - timedelta(days=1))
    body = {
        "snippet": {
            "videoId": video.id,
            "topLevelComment": {"snippet": {"textOriginal": "Спасибо за обзор!"}},
        }
    }
    headers = {"Authorization": f"Bearer {yt.oauth_token}"}
    url = f"{yt.url}/youtube/v3/commentThreads"
    async with http.post(url, params={"part": "snippet"}, json=body, headers=headers) as response:
        status, thread = response.status, await response.json()

    assert status == 200 and thread["kind"] == "youtube#commentThread"
    top = thread["snippet"]["topLevelComment"]
    assert top["snippet"]["textOriginal"] == "Спасибо за обзор!"
    assert thread["snippet"]["videoId"] == video.id
    assert (
        [c.id for c in yt.inserted_comments]
        == [thread["id"]]
        == [t.id for t in yt.threads(video.id)]
    )
    assert yt.quota_by_method["commentThreads.insert"] == 50


async def test_youtube_api_key_errors_use_googles_envelope(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор", "", T0)
    missing, no_key = await yt_get(http, yt, "commentThreads", part="snippet", key=None)
    wrong, bad_key = await yt_get(
        http, yt, "commentThreads", part="snippet", videoId=video.id, key="AIzaWrong"
    )
    async with FakeYouTube(legacy_key_errors=True) as legacy:
        assert isinstance(legacy, FakeYouTube)
        _, old = await yt_get(http, legacy, "search", part="snippet", key="AIzaWrong")

    assert missing == 403
    assert no_key["error"]["errors"][0]["reason"] == "forbidden"
    assert no_key["error"]["status"] == "PERMISSION_DENIED"
    assert wrong == 400
    error = bad_key["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["errors"][0]["reason"] == "badRequest"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert old["error"]["errors"] == [
        {"message": "Bad Request", "domain": "usageLimits", "reason": "keyInvalid"}
    ]
    assert yt.quota_used == 0


async def test_youtube_quota_runs_out_answers_quota_exceeded_and_resets_at_pacific_midnight(
    http: aiohttp.ClientSession,
) -> None:
    now = [datetime(2026, 11, 25, 7, 0, tzinfo=UTC)]  # 23:00 the day before in Los Angeles
    async with FakeYouTube(daily_quota=103, now=lambda: now[0]) as fake:
        assert isinstance(fake, FakeYouTube)
        video = fake.add_video(CHANNEL, "kaspi", "", T0 - timedelta(days=1))
        statuses = []
        _, _search = await yt_get(http, fake, "search", part="snippet", q="kaspi")
        for _ in range(4):
            status, body = await yt_get(
                http, fake, "commentThreads", part="snippet", videoId=video.id
            )
            statuses.append(status)
        used_before_midnight = fake.quota_used
        now[0] += timedelta(hours=1, minutes=1)  # 00:01 in Los Angeles
        after_reset, _ = await yt_get(
            http, fake, "commentThreads", part="snippet", videoId=video.id
        )

    assert statuses == [200, 200, 200, 403]
    assert body["error"]["code"] == 403
    assert body["error"]["errors"] == [
        {
            "message": body["error"]["message"],
            "domain": "youtube.quota",
            "reason": "quotaExceeded",
        }
    ]
    assert "quota" in body["error"]["message"]
    assert used_before_midnight == 103
    assert after_reset == 200 and fake.quota_used == 1


async def test_youtube_search_bucket_model_keeps_search_out_of_the_unit_budget(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeYouTube(search_quota="bucket", search_calls_per_day=2, now=lambda: T0) as fake:
        assert isinstance(fake, FakeYouTube)
        statuses = [
            (await yt_get(http, fake, "search", part="snippet", q="x"))[0] for _ in range(3)
        ]
    assert statuses == [200, 200, 403]
    assert fake.search_calls_used == 2 and fake.quota_used == 0


async def test_youtube_injected_faults_answer_googles_errors_and_are_not_applied(
    http: aiohttp.ClientSession, yt: FakeYouTube
) -> None:
    video = yt.add_video(CHANNEL, "Обзор", "", T0 - timedelta(days=1))
    question = yt.add_comment(video.id, "?", "Ann", T0 - timedelta(hours=1))
    yt.fail_next("comments.insert", 503)
    yt.fail_next_quota("comments.insert")
    yt.fail_next("commentThreads.list", 429, retry_after=7)

    unavailable, down = await yt_insert_reply(http, yt, question.id, "Ответ")
    over, quota = await yt_insert_reply(http, yt, question.id, "Ответ")
    limited, slow_down = await yt_get(http, yt, "commentThreads", part="snippet", videoId=video.id)
    ok, _ = await yt_insert_reply(http, yt, question.id, "Ответ")

    assert unavailable == 503 and down["error"]["status"] == "UNAVAILABLE"
    assert down["error"]["errors"][0]["reason"] == "backendError"
    assert over == 403 and quota["error"]["errors"][0]["reason"] == "quotaExceeded"
    assert limited == 429 and slow_down["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert ok == 200 and len(yt.inserted_comments) == 1
    assert yt.quota_used == 50  # injected faults spend nothing
    assert [c.applied for c in yt.calls_to("comments.insert")] == [False, False, True]
