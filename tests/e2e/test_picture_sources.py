"""A picture answer from either messenger reaches each source that publishes pictures as
a real media upload followed by the reply that references it: a file attached in
Slack's reply form, or a photo sent to the bot in Telegram's private reply conversation,
to VK (wall photo upload, then the comment with it), X (media upload, then the reply
with its media id) and a Telegram group (sendPhoto). The case is answered, as a picture.

(Telegram photo → Telegram group, with its caption limit, is in test_answer_forms.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from socialcare.bot.actions import ActionKind, CaseAction
from tests.conftest import ROOT, FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SLACK_CHANNEL,
    STRANGER_TG,
    Chat,
    eventually,
    running_chat,
)
from tests.e2e.test_answer_forms import CUSTOMERS_GROUP, _telegram_groups_on
from tests.e2e.test_collectors import _enable
from tests.fakes.vk import FakeVK
from tests.fakes.x import CREATE, FakeX

PICTURE = (ROOT / "pictures" / "ussd-codes.png").read_bytes()
ANSWER = "The codes are in the picture: *100# is the balance."
VK_GROUP, VK_CUSTOMER = 12345678, 501
VK_PHOTO_TOKEN = "vk1.a.FakeAgentUserTokenWithPhotos"  # a user token: VK wants one for wall photos


@dataclass
class Customer:
    """The platform the customer wrote on, as the test drives it: the config's edit,
    how the customer asks (after the app started), and the check of what was published."""

    config: Callable[[str], str]
    ask: Callable[[Chat], Awaitable[None]]
    published: Callable[[Chat], Any]  # truthy once the reply is there
    check: Callable[[Chat], None]  # the upload, its bytes, then the reply referencing it


async def _polled(chat: Chat) -> None:
    """The customer's post is found by the source's poll: nothing to send."""


def _calls(fake: Any) -> list[str]:
    return [call.method for call in fake.calls]


@asynccontextmanager
async def _vk(clock: FlowingClock, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Customer]:
    async with FakeVK(now=clock.now, rate_limits=False) as vk:
        vk.add_group(VK_GROUP, "Kcell", screen_name="kcell")
        vk.add_profile(VK_CUSTOMER, "Dana", "K.", screen_name="dana_k")
        vk.add_token(VK_PHOTO_TOKEN, VK_CUSTOMER)
        post = vk.add_post(VK_CUSTOMER, "Кселл, как проверить баланс?", clock.now(),
                           from_id=VK_CUSTOMER)
        monkeypatch.setenv("VK_SERVICE_TOKEN", vk.token)
        monkeypatch.setenv("VK_GROUP_TOKEN", vk.token)
        monkeypatch.setenv("VK_PHOTO_TOKEN", VK_PHOTO_TOKEN)

        def check(chat: Chat) -> None:
            [(owner, photo_id)] = vk.wall_photos
            assert vk.wall_photos[(owner, photo_id)] == PICTURE
            [comment] = vk.created_comments
            assert (comment.post_id, comment.text) == (post.id, ANSWER)
            assert vk.comment_attachments[comment.id] == f"photo{owner}_{photo_id}"
            calls = _calls(vk)
            assert calls.index("photos.saveWallPhoto") < calls.index("wall.createComment")

        yield Customer(
            _enable("vk", ("walls = [-12345678]", "walls = []\ncalls_per_second = 100"),
                    ('# api_url = "https://api.vk.com/method"', f'api_url = "{vk.url}/method"')),
            _polled, lambda chat: vk.created_comments, check)


@asynccontextmanager
async def _x(clock: FlowingClock, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Customer]:
    async with FakeX() as x:
        tweet = x.add_tweet("Kcell how do I check my balance?", author="jane_doe")
        monkeypatch.setenv("X_BEARER_TOKEN", x.bearer_token)
        monkeypatch.setenv("X_USER_TOKEN", x.user_token)

        def check(chat: Chat) -> None:
            [(media_id, uploaded)] = x.media.items()
            assert uploaded == PICTURE
            [posted] = x.calls_to(CREATE)
            assert posted.params["media"] == {"media_ids": [media_id]}
            assert posted.params["reply"] == {"in_reply_to_tweet_id": tweet.id}
            assert posted.params["text"] == ANSWER
            [reply] = x.replies_to(tweet)
            assert x.tweet_media[reply.id] == [media_id]
            calls = _calls(x)
            assert calls.index("media_upload") < calls.index(CREATE)

        yield Customer(
            _enable("x", ("options = { bearer_env",
                          f'options = {{ api_url = "{x.url}", bearer_env')),
            _polled, lambda chat: x.posted, check)


@asynccontextmanager
async def _telegram_group(clock: FlowingClock,
                          monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Customer]:
    asked: dict[str, Any] = {}

    async def ask(chat: Chat) -> None:
        chat.telegram.add_chat(CUSTOMERS_GROUP, title="Kcell users Almaty")
        asked.update(chat.telegram.message_update(
            "Kcell, how do I check my balance?", chat_id=CUSTOMERS_GROUP, from_user=STRANGER_TG))
        await chat.telegram_send(asked)

    def check(chat: Chat) -> None:
        [answer] = chat.telegram.bot_messages(CUSTOMERS_GROUP)
        assert answer.media is not None and answer.media["kind"] == "photo"
        assert answer.media["data"] == PICTURE
        assert answer.caption == ANSWER
        assert answer.reply_to_message_id == asked["message"]["message_id"]

    yield Customer(_telegram_groups_on, ask,
                   lambda chat: chat.telegram.bot_messages(CUSTOMERS_GROUP), check)


async def _from_slack(chat: Chat) -> None:
    """Aigerim opens the card's reply form in Slack, attaches the picture and sends."""
    [card] = await eventually(lambda: chat.slack_cards())
    case_id = card.metadata["event_payload"]["case_id"]
    await chat.slack_send(chat.slack.block_actions(
        action_id=CaseAction(ActionKind.REPLY, case_id).pack(), channel=SLACK_CHANNEL,
        message_ts=card.ts, user=AIGERIM_SLACK))
    form = await eventually(lambda: chat.slack.views and chat.slack.latest_view())
    assert any(b.get("element", {}).get("type") == "file_input" for b in form.view["blocks"])
    attached = chat.slack.add_user_file("codes.png", PICTURE, user=AIGERIM_SLACK)
    await chat.slack_send(chat.slack.view_submission(values={
        "picture": {"picture": {"files": [attached]}}, "text": {"text": ANSWER}}))


async def _from_telegram(chat: Chat) -> None:
    """Daniyar presses Reply on the card in Telegram and sends the bot the photo, its
    caption the text."""
    [card] = await eventually(lambda: chat.telegram_cards())
    await chat.card_recorded(card)
    await chat.telegram_send(chat.telegram.callback_query_update(
        card, CaseAction(ActionKind.REPLY, 1).pack(), from_user=DANIYAR_TG))  # the one case
    [prompt] = await eventually(lambda: chat.telegram.bot_messages(DANIYAR_TG["id"]))
    await chat.telegram_send(chat.telegram.photo_reply_update(
        prompt, PICTURE, ANSWER, from_user=DANIYAR_TG))


CUSTOMERS = {"vk": _vk, "x": _x, "telegram-group": _telegram_group}
AGENTS = {"slack": _from_slack, "telegram": _from_telegram}


@pytest.mark.parametrize(("agent", "customer"), [
    ("slack", "vk"), ("slack", "x"), ("slack", "telegram-group"),
    ("telegram", "vk"), ("telegram", "x"),
])
async def test_a_picture_answer_is_uploaded_then_replied_with_on_the_customers_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agent: str, customer: str
) -> None:
    # X searches back from today's date: the app runs on the wall clock's time, as in life.
    clock = FlowingClock(current=datetime.now(UTC))
    async with CUSTOMERS[customer](clock, monkeypatch) as platform, \
            running_chat(tmp_path, clock, config=platform.config) as chat:
        await platform.ask(chat)
        await AGENTS[agent](chat)
        await eventually(lambda: platform.published(chat))
        await eventually(lambda: "Answered by" in (chat.telegram_cards()[0].text or ""))
        async with chat.deps.uow() as uow:
            [case] = (await uow.cases.get_many({1})).values()
            events = await uow.events.for_case(1)

    platform.check(chat)
    assert case.state.value == "answered"
    [answer] = [e for e in events if e.kind.value == "agent_message"]
    assert answer.data["form"] == "picture"
