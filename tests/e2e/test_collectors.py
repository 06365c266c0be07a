"""Collecting in the running app: sources polled and pushed into cards, replies published
where the customer wrote, and the team told about a source's health once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from socialcare.adapters.collectors.push import hmac_sha256
from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_TG,
    SLACK_CHANNEL,
    STRANGER_TG,
    TELEGRAM_CHAT,
    Chat,
    eventually,
    running_chat,
)
from tests.fakes.feeds import FakeFeeds, FeedItem
from tests.fakes.google_reviews import CLIENT_SECRET as GOOGLE_CLIENT_SECRET
from tests.fakes.google_reviews import LOCATION as GBP_LOCATION
from tests.fakes.google_reviews import UPDATE_REPLY as GBP_UPDATE_REPLY
from tests.fakes.google_reviews import FakeGoogleReviews
from tests.fakes.meta import FakeMeta
from tests.fakes.threads import CREATE as THREADS_CREATE
from tests.fakes.threads import PUBLISH as THREADS_PUBLISH
from tests.fakes.threads import FakeThreads
from tests.fakes.tiktok import APP_SECRET as TIKTOK_APP_SECRET
from tests.fakes.tiktok import REFRESH as TIKTOK_REFRESH
from tests.fakes.tiktok import REPLY_CREATE as TIKTOK_REPLY
from tests.fakes.tiktok import FakeTikTok
from tests.fakes.vk import FakeVK
from tests.fakes.x import CREATE, FakeX
from tests.fakes.youtube import FakeYouTube

CUSTOMERS_GROUP = -1007000000001
YOUSCAN_SECRET = "youscan-secret-for-chat-tests"
META_VERIFY = "meta-verify-token-for-chat-tests"
KCELL_CHANNEL = "UCkcellOfficialChannel0001"  # the brand's YouTube channel


def _enable(name: str, *replacements: tuple[str, str]) -> Callable[[str], str]:
    """An edit of config.example.toml that turns source `name` on (and edits its lines)."""

    def edit(text: str) -> str:
        head = f'name = "{name}"'
        start = text.index(head)
        end = text.index("[[sources]]", start) if "[[sources]]" in text[start:] else len(text)
        block = text[start:end].replace("enabled = false", "enabled = true", 1)
        for old, new in replacements:
            assert old in block, old
            block = block.replace(old, new, 1)
        return text[:start] + block + text[end:]

    return edit


def _each(*edits: Callable[[str], str]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        for one in edits:
            text = one(text)
        return text

    return edit


def _notes(chat: Chat, words: str) -> list[str]:
    """Texts in the team's Slack channel and Telegram chat that contain `words`."""
    slack = [m.text for m in chat.slack.messages(SLACK_CHANNEL, include_replies=False)
             if words in (m.text or "")]
    telegram = [m.text or "" for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                if words in (m.text or "")]
    return slack + telegram


async def test_a_feed_and_vk_are_polled_into_cards_and_an_answer_is_published_on_vk(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeFeeds(now=flowing_clock.now) as feeds, \
            FakeVK(now=flowing_clock.now, rate_limits=False) as vk:
        feeds.publish("forum", [FeedItem("Kcell: no 4G in Aksay since Monday",
                                         guid="forum-1", link="/topic/7#p1",
                                         author="Bolat")])
        vk.add_group(12345678, "Kcell", screen_name="kcell")
        vk.add_profile(501, "Dana", "K.", screen_name="dana_k")
        post = vk.add_post(501, "Кселл, верните деньги за роуминг!", flowing_clock.now(),
                           from_id=501)
        monkeypatch.setenv("VK_SERVICE_TOKEN", vk.token)
        monkeypatch.setenv("VK_GROUP_TOKEN", vk.token)
        monkeypatch.setenv("VK_PHOTO_TOKEN", vk.token)  # named by the example; unused here
        config = _each(
            _enable("autoforum", ('url = "https://forum.example.kz/feed.php"',
                                  f'url = "{feeds.url("forum")}"')),
            _enable("vk", ("walls = [-12345678]", "walls = []\ncalls_per_second = 100"),
                    ('# api_url = "https://api.vk.com/method"',
                     f'api_url = "{vk.url}/method"')),
        )
        async with running_chat(tmp_path, flowing_clock, config=config) as chat:
            cards = await eventually(lambda: len(chat.telegram_cards()) == 2
                                     and chat.telegram_cards())
            vk_card = next(c for c in cards if "роуминг" in (c.text or ""))
            await chat.card_recorded(vk_card)
            await chat.telegram_send(chat.telegram.reply_update(
                vk_card, "Dana, we will refund it today.", from_user=DANIYAR_TG))
            await eventually(lambda: vk.created_comments)
            await eventually(lambda: any("Answered by" in (c.text or "")
                                         for c in chat.telegram_cards()))
            table = (await chat.slack_command("/sources", user=AIGERIM_SLACK)).body["text"]
            async with chat.deps.uow() as uow:
                [vk_case] = [c for c in (await uow.cases.get_many({1, 2})).values()
                             if c.source == "vk"]

    forum_card = next(c for c in cards if "Aksay" in (c.text or ""))
    assert "Bolat" in (forum_card.text or "")
    [comment] = vk.created_comments
    assert (comment.owner_id, comment.post_id) == (501, post.id)
    assert comment.text == "Dana, we will refund it today."
    assert vk_case.state.value == "answered"
    assert "🟢 autoforum (rss, extra)" in table
    assert "🟢 vk (vk, main)" in table
    assert "1 found" in table


async def test_youtube_and_x_are_polled_into_cards_and_answered_under_the_customers_posts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = FakeX()
    # The fake X searches seven days back from today's date, not from T0: the app runs
    # on X's time, as it does in life.
    clock = FlowingClock(current=x.now())
    async with x, FakeYouTube(now=clock.now) as yt:
        video = yt.add_video(KCELL_CHANNEL, "Tariffs for the new year", "",
                             clock.now() - timedelta(days=2))
        comment = yt.add_comment(video.id, "Kcell, my bonus minutes vanished overnight",
                                 "@aida_k", clock.now() - timedelta(minutes=3))
        tweet = x.add_tweet("Kcell no 4G in Astana since the morning", author="jane_doe")
        monkeypatch.setenv("YOUTUBE_API_KEY", yt.api_key)
        monkeypatch.setenv("YOUTUBE_OAUTH_TOKEN", yt.oauth_token)
        monkeypatch.setenv("X_BEARER_TOKEN", x.bearer_token)
        monkeypatch.setenv("X_USER_TOKEN", x.user_token)
        config = _each(
            _enable("youtube", ('key_env = "YOUTUBE_API_KEY"',
                                f'api_url = "{yt.url}/youtube/v3"\nkey_env = "YOUTUBE_API_KEY"'),
                    ('channels = ["UCxxxxxxxxxxxxxxxxxxxxxx"]', f'channels = ["{KCELL_CHANNEL}"]')),
            _enable("x", ("options = { bearer_env",
                          f'options = {{ api_url = "{x.url}", bearer_env')),
        )
        async with running_chat(tmp_path, clock, config=config) as chat:
            slack_cards = await eventually(lambda: len(chat.slack_cards()) == 2
                                           and chat.slack_cards())
            telegram_cards = await eventually(lambda: len(chat.telegram_cards()) == 2
                                              and chat.telegram_cards())
            youtube_card = next(c for c in slack_cards if "bonus minutes" in str(c.blocks))
            youtube_case = youtube_card.metadata["event_payload"]["case_id"]
            await chat.slack_send(chat.slack.block_actions(
                action_id=CaseAction(ActionKind.REPLY, youtube_case).pack(),
                channel=SLACK_CHANNEL, message_ts=youtube_card.ts, user=AIGERIM_SLACK))
            await eventually(lambda: chat.slack.views and chat.slack.latest_view())
            await chat.slack_send(chat.slack.view_submission(
                values={"text": {"text": "Aida, the minutes are back on your balance."}}))
            x_card = next(c for c in telegram_cards if "Astana" in (c.text or ""))
            await chat.card_recorded(x_card)
            await chat.telegram_send(chat.telegram.reply_update(
                x_card, "Jane, engineers are on it; back by 14:00.", from_user=DANIYAR_TG))
            await eventually(lambda: yt.inserted_comments and x.posted)
            await eventually(lambda: all("Answered by" in (c.text or "")
                                         for c in chat.telegram_cards()))
            async with chat.deps.uow() as uow:
                cases = {c.source: c for c in (await uow.cases.get_many({1, 2})).values()}
                threads = {source: await uow.mentions.for_case(case.id)
                           for source, case in cases.items()}

    [inserted] = yt.calls_to("comments.insert")
    assert inserted.params["body"] == {"snippet": {
        "parentId": comment.id, "textOriginal": "Aida, the minutes are back on your balance."}}
    [reply] = yt.inserted_comments
    [posted] = x.calls_to(CREATE)
    assert posted.params["_auth"] == "user"
    assert posted.params["reply"] == {"in_reply_to_tweet_id": tweet.id}
    assert posted.params["text"] == "Jane, engineers are on it; back by 14:00."
    [answer] = x.replies_to(tweet)
    assert cases["youtube"].id == youtube_case
    assert {source: case.state.value for source, case in cases.items()} == {
        "youtube": "answered", "x": "answered"}
    assert [(m.external_id, m.from_brand) for m in threads["youtube"]] == [
        (comment.id, False), (reply.id, True)]
    assert [(m.external_id, m.from_brand) for m in threads["x"]] == [
        (tweet.id, False), (answer.id, True)]


async def test_a_failing_feed_is_announced_once_and_its_recovery_once(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with FakeFeeds(now=flowing_clock.now) as feeds:
        feeds.publish("forum", [FeedItem("Nothing about brands here", guid="quiet-1")])
        config = _enable("autoforum", ('url = "https://forum.example.kz/feed.php"',
                                       f'url = "{feeds.url("forum")}"'),
                         ("poll_seconds = 300", "poll_seconds = 60"))
        async with running_chat(tmp_path, flowing_clock, config=config) as chat:
            await eventually(lambda: feeds.requests_to("forum"))
            feeds.remove("forum")
            for _ in range(4):  # 4 failed polls: told at the 3rd, not again at the 4th
                seen = len(feeds.requests_to("forum"))
                flowing_clock.advance(minutes=10)
                await eventually(lambda seen=seen: len(feeds.requests_to("forum")) > seen)
            failing = await eventually(lambda: len(_notes(chat, "is failing")) == 2
                                       and _notes(chat, "is failing"))
            table = (await chat.slack_command("/sources", user=AIGERIM_SLACK)).body["text"]
            feeds.publish("forum", [FeedItem("Still quiet", guid="quiet-2")])
            flowing_clock.advance(minutes=60)
            recovered = await eventually(lambda: len(_notes(chat, "working again")) == 2
                                         and _notes(chat, "working again"))
            flowing_clock.advance(minutes=10)
            seen = len(feeds.requests_to("forum"))
            await eventually(lambda: len(feeds.requests_to("forum")) > seen)
            failing_after, recovered_after = (_notes(chat, "is failing"),
                                              _notes(chat, "working again"))

    assert all("autoforum" in text and "404" in text for text in failing)
    assert len(failing_after) == 2 and len(recovered_after) == 2
    assert "🔴 autoforum (rss, extra) · failing" in table
    assert "HTTP 404" in table
    assert all("autoforum" in text for text in recovered)


async def test_a_mapped_webhook_makes_cases_and_refuses_a_bad_signature(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOUSCAN_SECRET", YOUSCAN_SECRET)
    body = json.dumps({"mentions": [{
        "id": "ys-77", "text": "Kcell support never answers the phone",
        "published": flowing_clock.now().isoformat(), "url": "https://example.org/p/77",
        "source": {"type": "facebook"},
        "author": {"id": "9", "fullName": "Marat O.", "nickname": "marat",
                   "url": "https://example.org/u/marat"},
        "post": {"id": "p-77"},
    }]}).encode()
    async with running_chat(tmp_path, flowing_clock, config=_enable("youscan")) as chat:
        async with aiohttp.ClientSession() as session:
            url = f"{chat.base_url}/ingest/youscan"
            async with session.post(url, data=body, headers={
                    "X-Signature": "sha256=" + hmac_sha256("wrong", body)}) as refused:
                refused_status = refused.status
                refused_reason = (await refused.json())["error"]
            async with session.post(f"{chat.base_url}/ingest/nobody", data=body) as unknown:
                unknown_status = unknown.status
            async with session.post(url, data=body, headers={
                    "X-Signature": "sha256=" + hmac_sha256(YOUSCAN_SECRET, body)}) as taken:
                results = (await taken.json())["results"]
        card = await eventually(lambda: chat.slack_cards() and chat.slack_cards()[0])
        async with chat.deps.uow() as uow:
            [stored] = await uow.mentions.for_case(results[0]["case_id"])
            state = await uow.sources.get("youscan")

    assert (refused_status, unknown_status) == (401, 404)
    assert "X-Signature" in refused_reason
    assert results == [{"external_id": "ys-77", "outcome": "created", "case_id": 1}]
    assert "never answers" in str(card.blocks)
    assert (stored.platform, stored.author.name, stored.author.handle) == (
        "facebook", "Marat O.", "marat")
    assert stored.thread_key == "p-77"
    assert state.items_found == 1 and state.last_success_at is not None


async def test_meta_checks_the_endpoint_delivers_a_comment_and_gets_the_answer(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeMeta() as meta:
        monkeypatch.setenv("META_APP_SECRET", meta.app_secret)
        monkeypatch.setenv("META_VERIFY_TOKEN", META_VERIFY)
        monkeypatch.setenv("META_PAGE_TOKEN", meta.access_token)
        config = _enable("meta", ('page_id = "1142469655832956"',
                                  f'page_id = "{meta.page_id}"\ngraph_url = "{meta.graph_url}"'))
        # Stamped by the app's clock: a time over a day ahead of it would be refused.
        comment = meta.add_fb_comment("Kcell, my SIM was blocked for no reason",
                                      from_name="Aliya B.", created_time=flowing_clock.now())
        async with running_chat(tmp_path, flowing_clock, config=config) as chat:
            url = f"{chat.base_url}/meta/meta"
            challenge = await meta.verify(url, META_VERIFY)
            wrong = await meta.verify(url, "guess")
            forged = await meta.deliver(meta.fb_comment_webhook(comment), url, signature="bad")
            delivered = await meta.deliver(meta.fb_comment_webhook(comment), url)
            [card] = await eventually(lambda: chat.telegram_cards())
            await chat.card_recorded(card)
            await chat.telegram_send(chat.telegram.reply_update(
                card, "Aliya, please DM us the number.", from_user=SAULE_TG))
            await eventually(lambda: meta.replies)
            again = await meta.deliver(meta.fb_comment_webhook(comment), url)

    assert challenge == (200, "1158201444")
    assert wrong[0] == 403
    assert forged.status == 401
    assert delivered.status == 200 and json.loads(delivered.text)["results"][0]["case_id"] == 1
    assert "Aliya B." in (card.text or "")
    [reply] = meta.replies
    assert (reply.kind, reply.target_id) == ("facebook_comment", comment.id)
    assert reply.message == "Aliya, please DM us the number."
    assert json.loads(again.text)["results"][0]["reason"] == "duplicate"


async def test_a_customer_group_message_becomes_a_case_answered_as_a_reply_in_the_group(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock, config=_enable("telegram-groups")) as chat:
        chat.telegram.add_chat(CUSTOMERS_GROUP, title="Kcell users Almaty")
        asked = chat.telegram.message_update("Kcell, is the network down in Almaty?",
                                             chat_id=CUSTOMERS_GROUP, from_user=STRANGER_TG)
        await chat.telegram_send(asked)
        # The team's own chat is never collected, brand or not.
        await chat.telegram_send(chat.telegram.message_update(
            "Kcell outage call at 11", chat_id=TELEGRAM_CHAT, from_user=DANIYAR_TG))
        [card] = await eventually(lambda: chat.telegram_cards())
        await chat.card_recorded(card)
        await chat.telegram_send(chat.telegram.reply_update(
            card, "Yes, since 10:40; fixed by noon.", from_user=DANIYAR_TG))
        answer = await eventually(lambda: chat.telegram.bot_messages(CUSTOMERS_GROUP))
        await eventually(lambda: "Answered by" in (chat.telegram_cards()[0].text or ""))
        async with chat.deps.uow() as uow:
            [case] = await uow.cases.list_open(limit=10)
            thread = await uow.mentions.for_case(1)

    assert case.source == "telegram-groups" and case.state.value == "answered"
    [reply] = answer
    assert reply.text == "Yes, since 10:40; fixed by noon."
    assert reply.reply_to_message_id == asked["message"]["message_id"]
    assert thread[0].author.handle == "@stranger"
    assert thread[0].url == f"https://t.me/c/{str(CUSTOMERS_GROUP).removeprefix('-100')}/" \
                            f"{asked['message']['message_id']}"
    assert [m.from_brand for m in thread] == [False, True]


async def test_tiktok_threads_and_shop_reviews_become_cards_answered_where_they_were_written(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = flowing_clock.now
    async with FakeTikTok(now=now, rate_limits=False) as tt, \
            FakeThreads(now=now, rate_limits=False) as th, \
            FakeGoogleReviews(now=now, rate_limits=False) as gbp:
        video = tt.add_video("New year tariffs", now() - timedelta(days=1))
        comment = tt.add_comment(video, "Where are my bonus minutes?", username="aida_k",
                                 at=now() - timedelta(minutes=2))
        post = th.add_post("Our new tariffs", now() - timedelta(days=1))
        reply = th.add_reply(post, "Roaming does not work in Tashkent", username="bolat",
                             at=now() - timedelta(minutes=2))
        review = gbp.add_review(GBP_LOCATION, "The shop on Abay street was rude", stars=2,
                                at=now() - timedelta(minutes=2))
        monkeypatch.setenv("TIKTOK_ACCESS_TOKEN", tt.access_token)
        monkeypatch.setenv("TIKTOK_REFRESH_TOKEN", tt.refresh_token)
        monkeypatch.setenv("TIKTOK_APP_SECRET", TIKTOK_APP_SECRET)
        monkeypatch.setenv("THREADS_TOKEN", th.token)
        monkeypatch.setenv("GOOGLE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET)
        monkeypatch.setenv("GOOGLE_REFRESH_TOKEN", gbp.refresh_token)
        tt.expire_tokens()  # the day-old token from the environment has run out
        config = _each(
            _enable("tiktok", ("business_id =", f'api_url = "{tt.url}"\nbusiness_id =')),
            _enable("threads", ("user_id =", f'api_url = "{th.url}"\nuser_id =')),
            _enable("shop-reviews", ("account =", f'api_url = "{gbp.url}"\n'
                                                  f'oauth_url = "{gbp.token_url}"\naccount ='),
                    ('tier = "extra"', 'tier = "main"')),
        )
        async with running_chat(tmp_path, flowing_clock, config=config) as chat:
            cards = await eventually(lambda: len(chat.telegram_cards()) == 3
                                     and chat.telegram_cards())
            answers = {"Where are my bonus": "Aida, the minutes are back.",
                       "Tashkent": "Bolat, roaming is restored.",
                       "Abay street": "We are sorry; the manager will call you."}
            for words, answer in answers.items():
                card = next(c for c in cards if words in (c.text or ""))
                await chat.card_recorded(card)
                await chat.telegram_send(chat.telegram.reply_update(
                    card, answer, from_user=DANIYAR_TG))
            await eventually(lambda: tt.replies_created and th.published and review.reply)
            await eventually(lambda: sum("Answered by" in (c.text or "")
                                         for c in chat.telegram_cards()) == 3)
            answer = await chat.slack_command("/sources", user=AIGERIM_SLACK)
            # The whole table is in the blocks (the text is a shortened fallback).
            [section] = answer.body["blocks"][0]["elements"]
            table = "".join(part["text"] for part in section["elements"])
            async with chat.deps.uow() as uow:
                made = await uow.cases.get_many({1, 2, 3})

    review_card = next(c for c in cards if "Abay street" in (c.text or ""))
    assert "★★☆☆☆ 2/5" in (review_card.text or "")
    by_source = {case.source: case for case in made.values()}
    assert {s: (c.brand, c.state.value) for s, c in by_source.items()} == {
        "tiktok": ("Kcell", "answered"), "threads": ("Kcell", "answered"),
        "shop-reviews": ("Kcell", "answered")}
    assert by_source["shop-reviews"].priority.value == "urgent"
    [tiktok_reply] = tt.calls_to(TIKTOK_REPLY)
    assert {k: tiktok_reply.params[k] for k in ("video_id", "comment_id", "text")} == {
        "video_id": video.item_id, "comment_id": comment.comment_id,
        "text": "Aida, the minutes are back."}
    assert tt.calls_to(TIKTOK_REFRESH)  # the expired token was renewed on the way
    [container] = th.calls_to(THREADS_CREATE)
    assert (container.params["reply_to_id"], container.params["text"]) == (
        reply.id, "Bolat, roaming is restored.")
    assert th.calls_to(THREADS_PUBLISH)[0].params["creation_id"] == container.response["id"]
    [put] = gbp.calls_to(GBP_UPDATE_REPLY)
    assert put.params["body"] == {"comment": "We are sorry; the manager will call you."}
    for name, kind in (("tiktok", "tiktok"), ("threads", "threads"),
                       ("shop-reviews", "google_reviews")):
        assert f"🟢 {name} ({kind}, main)" in table
    assert "replies: 0 of 1000 a day" in table
