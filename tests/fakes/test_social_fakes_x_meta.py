"""Self-tests of the X and Meta fakes, driven over HTTP the way the collectors will use them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.meta import FakeMeta
from tests.fakes.server import ManualClock
from tests.fakes.x import CREATE, SEARCH, FakeX, snowflake_time

SEARCH_PATH = "/2/tweets/search/recent"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
GRAPH_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Give each test one HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def search(
    http: aiohttp.ClientSession, x: FakeX, token: str | None = None, **params: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Call recent search (params with dots are passed as ``tweet_fields`` -> tweet.fields)."""
    query = {name.replace("_fields", ".fields"): value for name, value in params.items()}
    headers = {"Authorization": f"Bearer {token or x.bearer_token}"}
    async with http.get(f"{x.url}{SEARCH_PATH}", params=query, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


async def post_tweet(
    http: aiohttp.ClientSession, x: FakeX, token: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Call POST /2/tweets with a JSON body."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{x.url}/2/tweets", json=body, headers=headers) as response:
        return response.status, await response.json()


async def poll(
    http: aiohttp.ClientSession, x: FakeX, query: str, since_id: str | None, **extra: str
) -> tuple[list[str], str | None, int]:
    """Page through one poll; return the ids seen, the first page's newest_id, pages fetched."""
    params = {"query": query, "max_results": "10", **extra}
    if since_id:
        params["since_id"] = since_id
    ids: list[str] = []
    newest: str | None = None
    pages = 0
    while True:
        status, body, _ = await search(http, x, **params)
        assert status == 200, body
        pages += 1
        ids += [tweet["id"] for tweet in body.get("data", [])]
        newest = newest or body["meta"].get("newest_id")
        if "next_token" not in body["meta"]:
            return ids, newest, pages
        params["next_token"] = body["meta"]["next_token"]


# --------------------------------------------------------------------------- X: search


async def test_x_since_id_polling_across_pages_skips_and_repeats_nothing(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeX() as x:
        start = x.now() - timedelta(hours=3)
        first_batch = [
            x.add_tweet(f"@acme order {i} is late", author=f"user{i % 3}", created_at=start)
            for i in range(25)
        ]
        x.add_tweet("nothing to see", author="bob")

        status, page, _ = await search(http, x, query="@acme", max_results="10")
        assert status == 200 and page["meta"]["result_count"] == 10
        ids = [t["id"] for t in page["data"]]
        newest = page["meta"]["newest_id"]
        assert ids == sorted(ids, key=int, reverse=True) and newest == ids[0]
        assert page["meta"]["oldest_id"] == ids[-1]
        # Tweets that arrive while the client pages: the walk goes older, they wait for next poll.
        arrived_while_paging = [x.add_tweet(f"@acme new {i}") for i in range(2)]
        token = page["meta"]["next_token"]
        while token:
            status, page, _ = await search(
                http, x, query="@acme", max_results="10", next_token=token
            )
            assert status == 200
            ids += [t["id"] for t in page["data"]]
            token = page["meta"].get("next_token")
        assert ids == [t.id for t in reversed(first_batch)]

        later = [x.add_tweet(f"@acme later {i}") for i in range(10)]
        second, second_newest, pages = await poll(http, x, "@acme", since_id=newest)
        expected = [t.id for t in reversed(arrived_while_paging + later)]
        assert second == expected and pages == 2 and second_newest == expected[0]
        third, _, _ = await poll(http, x, "@acme", since_id=second_newest)
        assert third == []
        status, empty, _ = await search(http, x, query="@acme", since_id=second_newest)
        assert (status, empty) == (200, {"meta": {"result_count": 0}})

        # pagination_token is accepted too; a token the fake never gave is refused.
        _, page, _ = await search(http, x, query="@acme", max_results="10")
        token = page["meta"]["next_token"]
        _, by_next, _ = await search(http, x, query="@acme", next_token=token)
        status, by_pagination, _ = await search(http, x, query="@acme", pagination_token=token)
        assert status == 200 and by_pagination == by_next
        assert int(by_next["data"][0]["id"]) < int(page["data"][-1]["id"])
        status, bad, _ = await search(http, x, query="@acme", next_token="nope")
        assert status == 400 and bad["errors"][0]["parameters"] == {"next_token": ["nope"]}


async def test_x_search_answers_like_the_capture_with_fields_and_expansions(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeX() as x:
        jane = x.add_user("jane_doe", "Jane Doe", verified=False)
        root = x.add_tweet("@acme my parcel is late", author=jane)
        reply = x.add_tweet("@jane_doe acme here, so sorry", author=x.user, in_reply_to=root)

        status, plain, headers = await search(http, x, query="acme")
        assert status == 200
        assert [set(t) for t in plain["data"]] == [{"edit_history_tweet_ids", "id", "text"}] * 2
        assert plain["data"][0]["edit_history_tweet_ids"] == [reply.id]
        assert set(plain["meta"]) == {"newest_id", "oldest_id", "result_count"}
        assert "includes" not in plain and headers["x-rate-limit-limit"] == "450"

        status, full, _ = await search(
            http,
            x,
            query="acme",
            tweet_fields="created_at,author_id,conversation_id,in_reply_to_user_id,"
            "referenced_tweets,lang",
            expansions="author_id",
            user_fields="username,name,verified",
        )
        newest, oldest = full["data"]
        assert newest == {
            "edit_history_tweet_ids": [reply.id],
            "id": reply.id,
            "text": "@jane_doe acme here, so sorry",
            "author_id": x.user.id,
            "created_at": newest["created_at"],
            "conversation_id": root.id,
            "in_reply_to_user_id": jane.id,
            "referenced_tweets": [{"type": "replied_to", "id": root.id}],
            "lang": "en",
        }
        assert ISO_MS.fullmatch(newest["created_at"]) and newest["created_at"].endswith(".000Z")
        assert "in_reply_to_user_id" not in oldest and oldest["conversation_id"] == root.id
        assert full["includes"] == {
            "users": [
                {"id": x.user.id, "name": "Acme Support", "username": "acme_care"},
                {"id": jane.id, "name": "Jane Doe", "username": "jane_doe", "verified": False},
            ]
        }
        assert snowflake_time(root.id) == root.created_at  # ids carry their time, like X's

        status, wrong, _ = await search(http, x, query="acme", tweet_fields="created")
        assert status == 400 and wrong["title"] == "Invalid Request"
        assert wrong["type"] == "https://api.twitter.com/2/problems/invalid-request"
        assert wrong["errors"][0]["parameters"] == {"tweet.fields": ["created"]}
        for bad_max in ("5", "101"):
            status, body, _ = await search(http, x, query="acme", max_results=bad_max)
            assert status == 400
            assert body["errors"][0]["message"] == (
                f"The `max_results` query parameter value [{bad_max}] is not between 10 and 100"
            )
        status, body, _ = await search(http, x, q="acme")
        assert status == 400 and body["errors"][0]["parameters"] == {"q": ["acme"]}


async def test_x_search_sees_only_the_last_seven_days(http: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with FakeX(clock=clock) as x:
        x.add_tweet("@acme last month", created_at=x.now() - timedelta(days=30))
        x.add_tweet("@acme eight days ago", created_at=x.now() - timedelta(days=8))
        recent = x.add_tweet("@acme six days ago", created_at=x.now() - timedelta(days=6))
        fresh = x.add_tweet("@acme just now")

        _, body, _ = await search(http, x, query="@acme")
        assert [t["id"] for t in body["data"]] == [fresh.id, recent.id]

        week_ago = (x.now() - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        _, body, _ = await search(http, x, query="@acme", start_time=week_ago)
        assert [t["id"] for t in body["data"]] == [fresh.id, recent.id]
        eight_days = (x.now() - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body, _ = await search(http, x, query="@acme", start_time=eight_days)
        assert status == 400 and body["errors"][0]["parameters"] == {"start_time": [eight_days]}

        clock.advance(timedelta(days=1, minutes=5).total_seconds())
        _, body, _ = await search(http, x, query="@acme")
        assert [t["id"] for t in body["data"]] == [fresh.id]

        # A since_id older than the window is refused, as X does: the poller must drop it.
        status, body, _ = await search(http, x, query="@acme", since_id=recent.id)
        assert status == 400
        assert body["errors"][0]["parameters"] == {"since_id": [recent.id]}
        assert body["errors"][0]["message"].startswith(
            "'since_id' must be a tweet id created after "
        )
        assert "Please use a 'since_id' that is larger than " in body["errors"][0]["message"]

        clock.advance(timedelta(days=7).total_seconds())
        status, body, _ = await search(http, x, query="@acme")
        assert (status, body) == (200, {"meta": {"result_count": 0}})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("acme", ["t1", "t3", "t4", "t7"]),  # tokenized: "acmecorp" is another word
        ("ACME -from:acme_care", ["t1", "t3", "t7"]),
        ("acme -from:ACME_CARE -from:bob", ["t1", "t3"]),
        ('"not working"', ["t5"]),
        ('"NOT working" OR refund', ["t3", "t5"]),
        ("refund acme", ["t3"]),
        ("(refund OR late) acme -from:acme_care", ["t1", "t3"]),
        ("@acme", ["t3", "t7"]),
        ("acme is:reply", ["t4"]),
        ("acme -is:reply lang:en", ["t1", "t3", "t7"]),
        ("from:jane to:acme_care", []),
        ("to:jane", ["t4"]),
    ],
)
async def test_x_query_operators_pick_the_right_tweets(
    http: aiohttp.ClientSession, query: str, expected: list[str]
) -> None:
    async with FakeX() as x:
        tweets = {
            "t1": x.add_tweet("My ACME order is late", author="jane"),
            "t2": x.add_tweet("acmecorp stock is up", author="bob"),
            "t3": x.add_tweet("Refund please @Acme", author="jane"),
        }
        tweets["t4"] = x.add_tweet(
            "@jane acme here, sorry!", author=x.user, in_reply_to=tweets["t1"]
        )
        tweets["t5"] = x.add_tweet("the app is NOT WORKING again", author="bob")
        tweets["t6"] = x.add_tweet("not the app, it is working", author="bob")
        tweets["t7"] = x.add_tweet("@acme hello from bob", author="bob")
        by_id = {t.id: name for name, t in tweets.items()}

        status, body, _ = await search(http, x, query=query)
        assert status == 200, body
        assert sorted(by_id[t["id"]] for t in body.get("data", [])) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("-from:jane", "Rules must contain a non-negation term"),
        ("acme foo:bar", "Reference to invalid operator 'foo'"),
        ("(acme OR refund", "missing ')'"),
        ("", "The `query` query parameter can not be empty"),
    ],
)
async def test_x_refuses_queries_it_cannot_run(
    http: aiohttp.ClientSession, query: str, message: str
) -> None:
    async with FakeX() as x:
        status, body, _ = await search(http, x, query=query)
        assert status == 400 and body["title"] == "Invalid Request"
        assert message in body["errors"][0]["message"]


# --------------------------------------------------------------------------- X: limits, auth


async def test_x_rate_limit_headers_count_down_and_429_until_the_window_resets(
    http: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    async with FakeX(search_limit=3, clock=clock) as x:
        epoch = int(x.now().timestamp())
        remaining = []
        for _ in range(3):
            status, _, headers = await search(http, x, query="acme")
            assert status == 200 and headers["x-rate-limit-limit"] == "3"
            assert 899 <= int(headers["x-rate-limit-reset"]) - epoch <= 901
            remaining.append(headers["x-rate-limit-remaining"])
        assert remaining == ["2", "1", "0"]

        status, _, _ = await search(http, x, token="wrong", query="acme")
        assert status == 401  # rejected before it counts

        clock.advance(60)
        status, body, headers = await search(http, x, query="acme")
        assert status == 429
        assert body == {
            "title": "Too Many Requests",
            "detail": "Too Many Requests",
            "type": "about:blank",
            "status": 429,
        }
        assert headers["x-rate-limit-remaining"] == "0"
        assert 899 <= int(headers["x-rate-limit-reset"]) - epoch <= 901
        assert x.calls_to(SEARCH)[-1].fault == "ratelimited"

        # The user-context token has its own window (180 by default).
        status, _, headers = await search(http, x, token=x.user_token, query="acme")
        assert status == 200 and headers["x-rate-limit-limit"] == "180"

        clock.advance(900)
        status, _, headers = await search(http, x, query="acme")
        assert status == 200 and headers["x-rate-limit-remaining"] == "2"
        assert x.rate_limit(SEARCH, "app")[:2] == (3, 2)


async def test_x_injected_faults_are_answered_as_x_problems(http: aiohttp.ClientSession) -> None:
    async with FakeX() as x:
        x.fail_next(SEARCH, 503)
        status, body, _ = await search(http, x, query="acme")
        assert (status, body["title"], body["status"]) == (503, "Service Unavailable", 503)
        x.fail_next(SEARCH, 429, retry_after=30)
        status, body, headers = await search(http, x, query="acme")
        assert status == 429 and headers["x-rate-limit-remaining"] == "0"
        assert int(headers["x-rate-limit-reset"]) - int(x.now().timestamp()) in (30, 31)
        status, _, _ = await search(http, x, query="acme")
        assert status == 200
        assert [c.fault for c in x.calls_to(SEARCH)] == ["injected 503", "injected 429", None]


async def test_x_reply_needs_user_context_and_is_recorded(http: aiohttp.ClientSession) -> None:
    async with FakeX() as x:
        mention = x.add_tweet("@acme_care my router died", author="jane")
        reply = {"text": "Sorry Jane, DM us?", "reply": {"in_reply_to_tweet_id": mention.id}}

        status, body = await post_tweet(http, x, x.bearer_token, reply)
        assert status == 403
        assert body["title"] == "Unsupported Authentication" and body["status"] == 403
        assert body["type"] == "https://api.twitter.com/2/problems/unsupported-authentication"
        assert body["detail"].startswith("Authenticating with OAuth 2.0 Application-Only")
        status, body = await post_tweet(http, x, "not-a-token", reply)
        assert (status, body) == (
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        )
        assert x.posted == []

        status, body = await post_tweet(http, x, x.user_token, reply)
        assert status == 201
        posted = x.posted[0]
        assert body == {
            "data": {
                "id": posted.id,
                "text": "Sorry Jane, DM us?",
                "edit_history_tweet_ids": [posted.id],
            }
        }
        assert posted.author_id == x.user.id and posted.in_reply_to_tweet_id == mention.id
        assert posted.conversation_id == mention.id and x.replies_to(mention) == [posted]

        status, body = await post_tweet(http, x, x.user_token, reply)
        assert status == 403 and body["detail"] == (
            "You are not allowed to create a Tweet with duplicate content."
        )
        x.delete_tweet(mention)
        gone = {"text": "Still there?", "reply": {"in_reply_to_tweet_id": mention.id}}
        status, body = await post_tweet(http, x, x.user_token, gone)
        assert status == 403 and "deleted or not visible" in body["detail"]
        status, body = await post_tweet(http, x, x.user_token, {"reply": {}})
        assert status == 400 and body["title"] == "Invalid Request"

        calls = x.calls_to(CREATE)
        assert [c.status for c in calls] == [403, 401, 201, 403, 403, 400]
        assert calls[2].params["text"] == "Sorry Jane, DM us?" and calls[2].applied
        assert [c.params["_auth"] for c in calls[:3]] == ["app", None, "user"]
        # The app's own reply is found by a search that does not exclude it.
        _, found, _ = await search(http, x, query="jane OR sorry")
        assert [t["id"] for t in found["data"]] == [posted.id]


async def test_x_reply_whose_answer_was_lost_is_refused_as_a_duplicate_on_retry(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeX() as x:
        mention = x.add_tweet("@acme_care help", author="jane")
        reply = {"text": "On it!", "reply": {"in_reply_to_tweet_id": mention.id}}
        x.timeout_next(CREATE, delay=0.05, applied=True)
        with pytest.raises(aiohttp.ClientError):
            await post_tweet(http, x, x.user_token, reply)
        assert [t.text for t in x.posted] == ["On it!"]  # applied, though the client never knew
        status, body = await post_tweet(http, x, x.user_token, reply)
        assert status == 403 and "duplicate content" in body["detail"]
        assert [c.fault for c in x.calls_to(CREATE)] == ["lost_response", None]


# --------------------------------------------------------------------------- Meta: Graph API


async def graph(
    http: aiohttp.ClientSession,
    meta: FakeMeta,
    method: str,
    path: str,
    *,
    token: str | None = None,
    bearer: bool = False,
    **params: str,
) -> tuple[int, dict[str, Any]]:
    """Call the Graph API with the token as access_token (or as a Bearer header)."""
    headers: dict[str, str] = {}
    token = meta.access_token if token is None else token
    if bearer:
        headers["Authorization"] = f"Bearer {token}"
    elif token:
        params["access_token"] = token
    url = f"{meta.graph_url}{path}"
    if method == "GET":
        request = http.get(url, params=params, headers=headers)
    else:
        request = http.post(url, data=params, headers=headers)
    async with request as response:
        return response.status, await response.json()


async def test_meta_graph_answers_mention_and_comment_lookups(http: aiohttp.ClientSession) -> None:
    async with FakeMeta() as meta:
        theirs = meta.add_ig_media("Unboxing day with @acme!", username="jane_doe")
        mention = meta.add_ig_comment(
            "@acme my order never came", media=theirs, username="jane_doe", like_count=2
        )
        fields = (
            f"mentioned_comment.comment_id({mention.id})"
            "{text,username,timestamp,like_count,media{id,permalink}}"
        )
        status, body = await graph(http, meta, "GET", f"/{meta.ig_user_id}", fields=fields)
        assert status == 200
        assert body == {
            "mentioned_comment": {
                "text": "@acme my order never came",
                "username": "jane_doe",
                "timestamp": body["mentioned_comment"]["timestamp"],
                "like_count": 2,
                "media": {"permalink": theirs.permalink, "id": theirs.id},
                "id": mention.id,
            },
            "id": meta.ig_user_id,
        }
        assert GRAPH_TIME.fullmatch(body["mentioned_comment"]["timestamp"])

        fields = f"mentioned_media.media_id({theirs.id}){{caption,permalink,timestamp,username}}"
        status, body = await graph(
            http, meta, "GET", f"/{meta.ig_user_id}", bearer=True, fields=fields
        )
        assert status == 200 and body["mentioned_media"] == {
            "caption": "Unboxing day with @acme!",
            "permalink": theirs.permalink,
            "timestamp": body["mentioned_media"]["timestamp"],
            "username": "jane_doe",
            "id": theirs.id,
        }

        top = meta.add_fb_comment("Where is my refund?", from_name="Jane Doe")
        reply = meta.add_fb_comment("+1, same here", from_name="John Roe", parent=top)
        fields = "id,message,from,created_time,parent,permalink_url"
        status, body = await graph(http, meta, "GET", f"/{reply.id}", fields=fields)
        assert status == 200
        assert body == {
            "message": "+1, same here",
            "from": {"name": "John Roe", "id": reply.from_id},
            "created_time": body["created_time"],
            "parent": {
                "created_time": body["parent"]["created_time"],
                "from": {"name": "Jane Doe", "id": top.from_id},
                "message": "Where is my refund?",
                "id": top.id,
            },
            "permalink_url": body["permalink_url"],
            "id": reply.id,
        }
        assert GRAPH_TIME.fullmatch(body["created_time"])
        assert f"reply_comment_id={reply.id.split('_')[1]}" in body["permalink_url"]
        status, body = await graph(http, meta, "GET", f"/{top.id}")
        assert set(body) == {"created_time", "from", "message", "id"}  # Graph's default fields

        # Not a mention of us, or someone else's comment read directly: Graph will not say.
        plain = meta.add_ig_comment("nice pic", media=theirs)
        fields = f"mentioned_comment.comment_id({plain.id}){{text}}"
        status, body = await graph(http, meta, "GET", f"/{meta.ig_user_id}", fields=fields)
        assert status == 400 and body["error"]["error_subcode"] == 33
        status, body = await graph(http, meta, "GET", f"/{mention.id}")
        assert status == 400 and body["error"]["type"] == "GraphMethodException"


async def test_meta_graph_replies_are_recorded(http: aiohttp.ClientSession) -> None:
    async with FakeMeta() as meta:
        fb = meta.add_fb_comment("Where is my refund?")
        status, body = await graph(
            http, meta, "POST", f"/{fb.id}/comments", message="We're on it, Jane."
        )
        assert status == 200 and set(body) == {"id"}
        page_reply = meta.fb_comments[body["id"]]
        assert page_reply.parent_id == fb.id and page_reply.from_id == meta.page_id

        own = meta.add_ig_comment("Do you ship to Almaty?")  # on the IG user's own post
        status, body = await graph(
            http, meta, "POST", f"/{own.id}/replies", message="Yes, in 3 days!"
        )
        assert status == 200
        assert meta.ig_comments[body["id"]].parent_id == own.id

        theirs = meta.add_ig_media("My haul from @acme", username="jane_doe")
        mention = meta.add_ig_comment("@acme broken zip", media=theirs)
        status, body = await graph(http, meta, "POST", f"/{mention.id}/replies", message="Hi")
        assert status == 400 and body["error"]["error_subcode"] == 33  # not our media
        status, body = await graph(
            http,
            meta,
            "POST",
            f"/{meta.ig_user_id}/mentions",
            media_id=theirs.id,
            comment_id=mention.id,
            message="So sorry! DM us?",
        )
        assert status == 200
        status, body = await graph(
            http, meta, "POST", f"/{meta.ig_user_id}/mentions", media_id=theirs.id, message="<3"
        )
        assert status == 200
        status, body = await graph(http, meta, "POST", f"/{fb.id}/comments", message=" ")
        assert status == 400 and body["error"]["code"] == 100

        assert [(r.kind, r.target_id, r.message) for r in meta.replies] == [
            ("facebook_comment", fb.id, "We're on it, Jane."),
            ("instagram_reply", own.id, "Yes, in 3 days!"),
            ("instagram_mention", mention.id, "So sorry! DM us?"),
            ("instagram_mention", theirs.id, "<3"),
        ]
        assert all(r.at.tzinfo is not None for r in meta.replies)
        assert meta.calls_to(f"POST /{fb.id}/comments")[0].params == {
            "message": "We're on it, Jane."
        }


async def test_meta_graph_error_envelopes(http: aiohttp.ClientSession) -> None:
    async with FakeMeta() as meta:
        comment = meta.add_fb_comment("hello")
        status, body = await graph(http, meta, "GET", f"/{comment.id}", token="EAAwrong")
        assert status == 400
        assert body["error"] == {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": body["error"]["fbtrace_id"],
        }
        assert body["error"]["fbtrace_id"]
        status, body = await graph(http, meta, "GET", f"/{comment.id}", token="")
        assert status == 400 and body["error"]["code"] == 104

        for code, message in [
            (4, "(#4) Application request limit reached"),
            (17, "(#17) User request limit reached"),
            (32, "(#32) Page request limit reached"),
            (613, "(#613) Calls to this api have exceeded the rate limit."),
        ]:
            meta.fail_next_graph(f"/{comment.id}", code)
            status, body = await graph(http, meta, "GET", f"/{comment.id}")
            assert status == 400 and body["error"]["code"] == code
            assert body["error"]["message"] == message and body["error"]["type"] == "OAuthException"
        status, _ = await graph(http, meta, "GET", f"/{comment.id}")
        assert status == 200

        meta.fail_next_graph(f"/{comment.id}/comments", 80001)
        status, body = await graph(http, meta, "POST", f"/{comment.id}/comments", message="hi")
        assert body["error"]["code"] == 80001 and meta.replies == []  # not applied
        assert meta.calls_to(f"POST /{comment.id}/comments")[0].fault == "injected 400"

        status, body = await graph(http, meta, "GET", f"/{comment.id}", fields="id,mesage")
        assert body["error"]["message"] == (
            "(#100) Tried accessing nonexisting field (mesage) on node type (Comment)"
        )
        status, body = await graph(http, meta, "GET", "/999_999")
        assert body["error"]["message"].startswith(
            "Unsupported get request. Object with ID '999_999' does not exist"
        )
        assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)
        async with http.get(
            f"{meta.url}/v2.8/{comment.id}", params={"access_token": meta.access_token}
        ) as response:
            assert (await response.json())["error"]["code"] == 2635


# --------------------------------------------------------------------------- Meta: webhooks


@asynccontextmanager
async def meta_app(app_secret: str, verify_token: str) -> AsyncIterator[tuple[str, list[Any]]]:
    """Serve a tiny webhook receiver that checks Meta's signature as an app must."""
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        digest = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        signature = request.headers.get("X-Hub-Signature-256", "")
        if not hmac.compare_digest(signature, f"sha256={digest}"):
            return web.Response(status=403, text="bad signature")
        received.append(json.loads(raw))
        return web.Response(text="EVENT_RECEIVED")

    async def handshake(request: web.Request) -> web.Response:
        query = request.query
        if query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == verify_token:
            return web.Response(text=query.get("hub.challenge", ""))
        return web.Response(status=403, text="forbidden")

    app = web.Application()
    app.router.add_post("/webhooks/meta", hook)
    app.router.add_get("/webhooks/meta", handshake)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/meta", received
    finally:
        await runner.cleanup()


def skeleton(body: Any) -> Any:
    """Reduce a JSON value to its keys and nesting, to compare shapes with the captures."""
    if isinstance(body, dict):
        return {key: skeleton(value) for key, value in body.items()}
    if isinstance(body, list):
        return [skeleton(item) for item in body]
    return type(body).__name__


async def test_meta_webhooks_are_signed_and_shaped_like_the_captures() -> None:
    async with FakeMeta() as meta, meta_app(meta.app_secret, "verify-me") as (url, received):
        comment = meta.add_fb_comment("Where is my refund?", from_name="Jane Doe")
        delivery = await meta.deliver(meta.fb_comment_webhook(comment), url)
        assert (delivery.status, delivery.text) == (200, "EVENT_RECEIVED")
        value = received[0]["entry"][0]["changes"][0]["value"]
        assert value == {
            "from": {"id": comment.from_id, "name": "Jane Doe"},
            "parent_id": comment.post_id,  # a top-level comment's parent is the post
            "comment_id": comment.id,
            "item": "comment",
            "verb": "add",
            "created_time": int(comment.created_time.timestamp()),
            "post_id": comment.post_id,
            "message": "Where is my refund?",
        }
        # The 2016 capture's shape (shared/samples/facebook_page_feed_comment_webhook.json).
        legacy = meta.fb_comment_webhook(comment, legacy_sender=True)
        assert skeleton(legacy) == {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "str",
                            "value": {
                                "sender_id": "int",
                                "sender_name": "str",
                                "parent_id": "str",
                                "comment_id": "str",
                                "item": "str",
                                "verb": "str",
                                "created_time": "int",
                                "post_id": "str",
                                "message": "str",
                            },
                        }
                    ],
                    "id": "str",
                    "time": "int",
                }
            ],
            "object": "str",
        }

        theirs = meta.add_ig_media("Haul from @acme", username="jane_doe")
        mention = meta.add_ig_comment("@acme the zip broke", media=theirs)
        await meta.deliver(meta.ig_mention_comment_webhook(mention), url)
        await meta.deliver(meta.ig_mention_caption_webhook(theirs), url)
        assert received[1] == {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "mentions",
                            "value": {"comment_id": mention.id, "media_id": theirs.id},
                        }
                    ],
                    "id": meta.ig_user_id,
                    "time": received[1]["entry"][0]["time"],
                }
            ],
            "object": "instagram",
        }
        assert received[2]["entry"][0]["changes"][0]["value"] == {"media_id": theirs.id}

        question = meta.add_ig_comment("Do you ship to Almaty?", username="aigerim")
        answer = meta.add_ig_comment("Yes!", username="acme", parent=question)
        await meta.deliver(
            meta.batch(meta.ig_comments_webhook(question), meta.ig_comments_webhook(answer)), url
        )
        first, second = (e["changes"][0]["value"] for e in received[3]["entry"])
        own = meta.own_media()
        assert first == {
            "from": {"id": question.from_id, "username": "aigerim"},
            "media": {"id": own.id, "media_product_type": "FEED"},
            "id": question.id,
            "text": "Do you ship to Almaty?",
        }
        assert second["parent_id"] == question.id and second["from"]["id"] == meta.ig_user_id

        for signature in ("bad", "missing", "sha256=00"):
            refused = await meta.deliver(meta.fb_comment_webhook(comment), url, signature=signature)
            assert refused.status == 403
        wrong_secret = await meta.deliver(meta.fb_comment_webhook(comment), url, app_secret="x")
        assert wrong_secret.status == 403 and len(received) == 4
        assert [d.status for d in meta.deliveries] == [200, 200, 200, 200, 403, 403, 403, 403]


async def test_meta_webhook_body_is_escaped_so_only_the_raw_bytes_verify() -> None:
    async with FakeMeta() as meta, meta_app(meta.app_secret, "verify-me") as (url, received):
        comment = meta.add_fb_comment("Заказ не пришёл 😡 https://acme.example/o/1")
        delivery = await meta.deliver(meta.fb_comment_webhook(comment), url)
        assert delivery.status == 200
        assert received[0]["entry"][0]["changes"][0]["value"]["message"] == comment.message
        assert b"\\u0417\\u0430" in delivery.raw and b"\\ud83d\\ude21" in delivery.raw
        assert b"https:\\/\\/acme.example\\/o\\/1" in delivery.raw
        assert delivery.headers["X-Hub-Signature"].startswith("sha1=")
        reserialised = json.dumps(received[0]).encode()
        digest = hmac.new(meta.app_secret.encode(), reserialised, hashlib.sha256).hexdigest()
        assert delivery.headers["X-Hub-Signature-256"] != f"sha256={digest}"


async def test_meta_verification_handshake_echoes_the_challenge() -> None:
    async with FakeMeta() as meta, meta_app(meta.app_secret, "verify-me") as (url, _):
        assert await meta.verify(url, "verify-me", "1158201444") == (200, "1158201444")
        status, _ = await meta.verify(url, "guess", "42")
        assert status == 403
        assert [h.params["hub.mode"] for h in meta.handshakes] == ["subscribe", "subscribe"]
