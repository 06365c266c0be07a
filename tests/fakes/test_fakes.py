"""Self-tests of the fakes: the real slack_sdk, slack_bolt and python-telegram-bot against them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakes.server import ManualClock
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import DEFAULT_GROUP, FakeTelegram, make_user, parse_html

# PTB warns, whenever it builds a RetryAfter, that retry_after will become a timedelta.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CARE = "C0CARE001"
CLAIM_BLOCKS = [
    {"type": "section", "block_id": "case", "text": {"type": "mrkdwn", "text": "*Case 12* new"}},
    {
        "type": "actions",
        "block_id": "case-actions",
        "elements": [
            {
                "type": "button",
                "action_id": "claim",
                "text": {"type": "plain_text", "text": "Claim"},
                "value": "case:12",
            }
        ],
    },
]


async def eventually(condition: Callable[[], Any], *, within: float = 3.0) -> None:
    """Wait until `condition()` is true (listeners run after the ack)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp app on a free local port; return the runner and its origin."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """Run a FakeSlack for one test."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """Run a FakeTelegram for one test."""
    async with FakeTelegram() as fake:
        yield fake


def web_client(slack: FakeSlack, **kwargs: Any) -> AsyncWebClient:
    """Build the real slack_sdk client pointed at the fake."""
    return AsyncWebClient(token=slack.bot_token, base_url=slack.url, **kwargs)


# --------------------------------------------------------------------------- Slack Web API


async def test_slack_post_update_and_history_keep_one_card_with_its_latest_blocks(
    slack: FakeSlack,
) -> None:
    client = web_client(slack)
    posted = await client.chat_postMessage(
        channel=CARE,
        text="Case 12",
        blocks=CLAIM_BLOCKS,
        metadata={"event_type": "case_card", "event_payload": {"case_id": 12}},
        unfurl_links=False,
    )
    ts = posted["ts"]
    assert posted["channel"] == CARE and posted["message"]["blocks"] == CLAIM_BLOCKS
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Claimed by alice"}}]
    await client.chat_update(channel=CARE, ts=ts, text="Case 12 claimed", blocks=new_blocks)
    second = await client.chat_postMessage(channel=CARE, text="digest", thread_ts=ts)

    card = slack.latest(CARE)
    assert card.ts == ts and card.blocks == new_blocks and card.text == "Case 12 claimed"
    assert [revision.blocks for revision in card.edits] == [CLAIM_BLOCKS]
    assert card.metadata == {"event_type": "case_card", "event_payload": {"case_id": 12}}
    assert card.options == {"unfurl_links": False}
    assert [m.ts for m in slack.thread(CARE, ts)] == [second["ts"]]

    history = await client.conversations_history(channel=CARE, include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [ts]  # replies stay in their thread
    assert history["messages"][0]["metadata"]["event_payload"] == {"case_id": 12}
    assert history["messages"][0]["reply_count"] == 1
    plain = await client.conversations_history(channel=CARE, limit=1)
    assert "metadata" not in plain["messages"][0]
    assert (await client.conversations_history(channel=CARE, oldest=ts))["messages"] == []

    with pytest.raises(SlackApiError) as unknown:
        await client.chat_update(channel=CARE, ts="1.000001", text="x")
    assert unknown.value.response["error"] == "message_not_found"
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
        "conversations.history",
        "conversations.history",
        "conversations.history",
        "chat.update",
    ]
    assert slack.calls[0].params["channel"] == CARE and slack.calls[-1].status == 200


async def test_slack_ephemeral_permalink_pins_reactions_dm_and_users(slack: FakeSlack) -> None:
    client = web_client(slack)
    ts = (await client.chat_postMessage(channel=CARE, text="Case 7"))["ts"]
    ephemeral = await client.chat_postEphemeral(channel=CARE, user="U0USER001", text="only you")
    assert ephemeral["message_ts"] and slack.ephemerals_for("U0USER001")[0].text == "only you"
    link = await client.chat_getPermalink(channel=CARE, message_ts=ts)
    assert link["permalink"].endswith(f"/archives/{CARE}/p{ts.replace('.', '')}")
    await client.pins_add(channel=CARE, timestamp=ts)
    await client.reactions_add(channel=CARE, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError, match="already_pinned"):
        await client.pins_add(channel=CARE, timestamp=ts)
    assert slack.latest(CARE).pinned and slack.latest(CARE).reactions == {"eyes": ["U0BOT0001"]}

    dm = await client.conversations_open(users="U0USER001")
    again = await client.conversations_open(users="U0USER001")
    assert dm["channel"]["id"].startswith("D") and again["channel"]["id"] == dm["channel"]["id"]
    await client.chat_postMessage(channel=dm["channel"]["id"], text="you have a case")
    assert slack.latest(dm["channel"]["id"]).text == "you have a case"
    user = await client.users_info(user="U0USER001")
    assert user["user"]["name"] == "alice" and user["user"]["tz"] == "Europe/Berlin"
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U0NOBODY")
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"]) == ("U0BOT0001", "B0BOT0001")


async def test_slack_views_open_takes_a_fresh_trigger_once(slack: FakeSlack) -> None:
    client = web_client(slack)
    view = {
        "type": "modal",
        "callback_id": "resolve",
        "title": {"type": "plain_text", "text": "Resolve case"},
        "private_metadata": "case:12",
        "blocks": [],
    }
    trigger = slack.issue_trigger_id("U0USER001")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["private_metadata"] == "case:12"
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        await client.views_open(trigger_id=trigger, view=view)
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(
            trigger_id=slack.issue_trigger_id("U0USER001"),
            view={**view, "title": {"type": "plain_text", "text": "x" * 25}},
        )
    updated = await client.views_update(
        view_id=opened["view"]["id"], hash=opened["view"]["hash"], view={**view, "blocks": []}
    )
    assert updated["view"]["id"] == opened["view"]["id"]
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=opened["view"]["id"], hash="stale", view=view)


async def test_slack_files_upload_v2_uses_the_fake_upload_url(slack: FakeSlack) -> None:
    client = web_client(slack)
    result = await client.files_upload_v2(
        channel=CARE, content=b"case,status\n12,open\n", filename="digest.csv", title="Digest"
    )
    assert result["file"]["name"] == "digest.csv" and result["file"]["size"] == 20
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "upload_url",
        "files.completeUploadExternal",
    ]
    shared = slack.latest(CARE)
    assert shared.files[0]["title"] == "Digest"
    assert slack.files[shared.files[0]["id"]]["data"] == b"case,status\n12,open\n"


async def test_slack_429_retry_after_is_honoured_by_the_rate_limit_retry_handler(
    slack: FakeSlack,
) -> None:
    client = web_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    await client.chat_postMessage(channel=CARE, text="after the wait")
    assert time.monotonic() - started >= 1.0
    first, second = slack.calls_to("chat.postMessage")
    assert (first.status, first.applied, first.fault) == (429, False, "injected 429")
    assert (second.status, second.applied) == (200, True)
    assert [m.text for m in slack.messages(CARE)] == ["after the wait"]


async def test_slack_rate_limits_per_channel_and_tier_3_updates() -> None:
    clock = ManualClock()
    async with FakeSlack(clock=clock) as slack:
        client = web_client(slack)
        for n in range(3):  # the burst allowance
            await client.chat_postMessage(channel=CARE, text=f"m{n}")
        with pytest.raises(SlackApiError) as limited:
            await client.chat_postMessage(channel=CARE, text="too fast")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "1"
        assert limited.value.response["error"] == "ratelimited"
        await client.chat_postMessage(channel="C0OTHER01", text="another channel is fine")
        clock.advance(1.0)
        ts = (await client.chat_postMessage(channel=CARE, text="a second later"))["ts"]

        for n in range(50):
            await client.chat_update(channel=CARE, ts=ts, text=f"edit {n}")
        with pytest.raises(SlackApiError) as tier3:
            await client.chat_update(channel=CARE, ts=ts, text="edit 51")
        # Tier 3 is a bucket of 50 that gets one back every 1.2 s.
        assert int(tier3.value.response.headers["Retry-After"]) == 2
        clock.advance(1.2)
        await client.chat_update(channel=CARE, ts=ts, text="edit 51, a slot later")
        with pytest.raises(SlackApiError):
            await client.chat_update(channel=CARE, ts=ts, text="edit 52")
        slack.rate_limits_enabled = False
        await client.chat_update(channel=CARE, ts=ts, text="limits off")
        assert slack.latest(CARE).text == "limits off"


async def test_slack_auth_and_unknown_methods_answer_like_slack(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.url).auth_test()
    with pytest.raises(SlackApiError, match="not_authed"):
        await AsyncWebClient(base_url=slack.url).api_call("auth.test")
    with pytest.raises(SlackApiError, match="unknown_method"):
        await web_client(slack).api_call("chat.fly")


async def test_slack_failed_calls_are_not_applied_unless_the_response_was_lost(
    slack: FakeSlack,
) -> None:
    fast_retry = AsyncConnectionErrorRetryHandler(
        interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    client = web_client(slack, retry_handlers=[fast_retry])
    slack.fail_next("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel=CARE, text="lost")
    assert failed.value.response.status_code == 500 and slack.messages(CARE) == []

    slack.timeout_next("chat.postMessage", delay=0.05)  # swallowed; the SDK retries once
    await client.chat_postMessage(channel=CARE, text="once")
    assert [m.text for m in slack.messages(CARE)] == ["once"]

    slack.timeout_next("chat.postMessage", delay=0.05, applied=True)  # applied, answer lost
    await client.chat_postMessage(channel=CARE, text="twice")
    assert [m.text for m in slack.messages(CARE)] == ["once", "twice", "twice"]
    assert [c.fault for c in slack.calls_to("chat.postMessage")] == [
        "injected 500",
        "timeout",
        None,
        "lost_response",
        None,
    ]

    slack.fail_next("chat.postMessage", status=200, error="not_in_channel")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel=CARE, text="nope")

    slack.slow_next("chat.postMessage", delay=1.0)  # the client gives up first: not applied
    impatient = web_client(slack, timeout=0.2, retry_handlers=[])
    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel=CARE, text="too slow")
    await asyncio.sleep(0.05)
    assert [m.text for m in slack.messages(CARE)] == ["once", "twice", "twice"]


async def test_slack_response_url_takes_five_posts(slack: FakeSlack) -> None:
    url = slack.issue_response_url(channel=CARE, user="U0USER001")
    async with aiohttp.ClientSession() as session:
        statuses = []
        for n in range(6):
            async with session.post(url, json={"text": f"reply {n}"}) as response:
                statuses.append((response.status, await response.text()))
    assert statuses == [(200, "ok")] * 5 + [(404, "used_url")]
    assert [e.text for e in slack.ephemerals_for("U0USER001")] == [f"reply {n}" for n in range(5)]


async def chaos_outcomes(seed: int) -> tuple[list[int | None], int]:
    """Post 20 messages under 40 % chaos; return the statuses answered and messages stored."""
    async with FakeSlack(rate_limits=False) as slack:
        slack.set_chaos(0.4, seed=seed, kinds=("ratelimited", "server_error"))
        client = web_client(slack, retry_handlers=[])
        for n in range(20):
            with contextlib.suppress(SlackApiError):
                await client.chat_postMessage(channel=CARE, text=f"m{n}")
        statuses = [c.status for c in slack.calls]
        assert len(slack.messages(CARE)) == statuses.count(200)
        return statuses, len(slack.messages(CARE))


async def test_slack_chaos_is_seeded_and_failed_calls_are_not_applied() -> None:
    first, again, other = await chaos_outcomes(3), await chaos_outcomes(3), await chaos_outcomes(4)
    assert first == again and first != other
    assert {429, 200} <= set(first[0]) and set(first[0]) & {500, 502, 503}


# --------------------------------------------------------------------------- Slack -> Bolt app


@pytest.fixture
async def bolt(slack: FakeSlack) -> AsyncIterator[tuple[AsyncApp, str]]:
    """Serve a Bolt AsyncApp over HTTP whose client talks to the fake; yield it and its URL."""
    app = AsyncApp(client=web_client(slack), signing_secret=slack.signing_secret)
    runner, origin = await serve(app.web_app(path="/slack/events"))
    yield app, f"{origin}/slack/events"
    await runner.cleanup()


async def test_bolt_app_handles_a_signed_block_actions_click(
    slack: FakeSlack, bolt: tuple[AsyncApp, str]
) -> None:
    app, events_url = bolt
    handled = []

    @app.action("claim")
    async def claim(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        container = body["container"]
        await client.chat_update(
            channel=container["channel_id"], ts=container["message_ts"], text="claimed", blocks=[]
        )
        await respond(text="You claimed case 12", response_type="ephemeral")
        handled.append(body["actions"][0]["value"])

    posted = await web_client(slack).chat_postMessage(
        channel=CARE, text="Case", blocks=CLAIM_BLOCKS
    )
    ts = posted["ts"]
    request = slack.block_actions(action_id="claim", channel=CARE, user="U0USER001")
    assert request.payload["container"]["message_ts"] == ts
    delivered = await slack.deliver(request, events_url)
    assert delivered.status == 200
    await eventually(lambda: handled == ["case:12"])
    assert slack.message(CARE, ts).text == "claimed" and slack.message(CARE, ts).blocks == []
    await eventually(lambda: slack.responses(request.payload["response_url"]))
    assert slack.ephemerals_for("U0USER001")[-1].text == "You claimed case 12"
    assert len(slack.calls_to("auth.test")) == 1  # Bolt's token check ran against the fake

    with pytest.raises(ValueError, match="no element"):
        slack.block_actions(action_id="escalate", channel=CARE)
    forged = slack.block_actions(
        action_id="claim", channel=CARE, check=False, signing_secret="not-the-secret"
    )
    assert (await slack.deliver(forged, events_url)).status == 401
    stale = slack.block_actions(
        action_id="claim", channel=CARE, check=False, timestamp=int(time.time()) - 600
    )
    response = await app.async_dispatch(AsyncBoltRequest(body=stale.body, headers=stale.headers))
    assert response.status == 401


async def test_bolt_slash_command_opens_a_modal_and_view_submission_closes_it(
    slack: FakeSlack, bolt: tuple[AsyncApp, str]
) -> None:
    app, events_url = bolt
    submitted: list[dict[str, Any]] = []

    @app.command("/case")
    async def open_modal(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "resolve",
                "private_metadata": body["text"],
                "title": {"type": "plain_text", "text": "Resolve"},
                "submit": {"type": "plain_text", "text": "Save"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "note",
                        "label": {"type": "plain_text", "text": "Note"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    },
                    {
                        "type": "input",
                        "block_id": "status",
                        "label": {"type": "plain_text", "text": "Status"},
                        "element": {
                            "type": "static_select",
                            "action_id": "pick",
                            "options": [
                                {"text": {"type": "plain_text", "text": "Done"}, "value": "done"}
                            ],
                        },
                    },
                ],
            },
        )

    @app.view("resolve")
    async def resolve(ack: Any, view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        if not values["note"]["text"]["value"]:
            await ack(response_action="errors", errors={"note": "Say something"})
            return
        await ack()
        submitted.append(
            {
                "case": view["private_metadata"],
                "note": values["note"]["text"]["value"],
                "status": values["status"]["pick"]["selected_option"]["value"],
            }
        )

    command = slack.slash_command("/case", "12", channel=CARE)
    assert (await slack.deliver(command, events_url)).status == 200
    await eventually(lambda: bool(slack.views))
    modal = slack.latest_view()
    assert modal.user == "U0USER001" and modal.view["private_metadata"] == "12"

    empty = slack.view_submission(values={"note": {"text": ""}, "status": {"pick": "done"}})
    answer = await slack.deliver(empty, events_url)
    assert answer.json() == {"response_action": "errors", "errors": {"note": "Say something"}}
    assert modal.errors == {"note": "Say something"} and not modal.closed

    filled = slack.view_submission(
        values={"note": {"text": "refunded"}, "status": {"pick": "done"}}
    )
    assert (await slack.deliver(filled, events_url)).status == 200
    assert modal.closed and submitted == [{"case": "12", "note": "refunded", "status": "done"}]


async def test_bolt_receives_an_event_callback_and_replies_in_thread(
    slack: FakeSlack, bolt: tuple[AsyncApp, str]
) -> None:
    app, events_url = bolt

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any) -> None:
        await say(text="on it", thread_ts=event["ts"])

    message = slack.post_as_user(CARE, "<@U0BOT0001> status?")
    request = slack.event_callback(slack.message_event(message, event_type="app_mention"))
    assert (await slack.deliver(request, events_url)).status == 200
    await eventually(lambda: bool(slack.thread(CARE, message.ts)))
    assert slack.thread(CARE, message.ts)[0].text == "on it"


# --------------------------------------------------------------------------- Slack Socket Mode


@asynccontextmanager
async def socket_mode(app: AsyncApp, slack: FakeSlack) -> AsyncIterator[AsyncSocketModeHandler]:
    """Connect the real AsyncSocketModeHandler to the fake; close it and its tasks after."""
    # SocketModeClient calls apps.connections.open through this client, so it needs base_url.
    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=web_client(slack))
    await handler.connect_async()
    try:
        yield handler
    finally:
        client = handler.client
        tasks = [client.message_processor, client.current_session_monitor, client.message_receiver]
        await handler.close_async()
        # close() only cancels the client's tasks; let them finish before the loop ends.
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        await slack.socket_disconnected()


async def test_socket_mode_app_acks_a_block_actions_envelope_and_updates_the_card(
    slack: FakeSlack,
) -> None:
    client = web_client(slack)
    app = AsyncApp(client=client)
    handled: list[str] = []

    @app.action("claim")
    async def claim(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        container = body["container"]
        await client.chat_update(
            channel=container["channel_id"], ts=container["message_ts"], text="claimed", blocks=[]
        )
        handled.append(body["actions"][0]["value"])

    ts = (await client.chat_postMessage(channel=CARE, text="Case", blocks=CLAIM_BLOCKS))["ts"]
    async with socket_mode(app, slack):
        connection = await slack.socket_connected()
        assert connection.hello == {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": slack.app_id},
        }
        request = slack.block_actions(action_id="claim", channel=CARE)
        ack = await slack.socket_send(request)
        assert ack is not None and ack.payload is None and not ack.late
        assert ack.seconds is not None and 0 <= ack.seconds < 3
        await eventually(lambda: handled == ["case:12"])

    (delivery,) = slack.socket_deliveries
    assert delivery.type == "interactive" and delivery.payload == request.payload
    assert delivery.envelope["accepts_response_payload"] is False
    assert delivery.acked and delivery.ack is ack and slack.socket_acks == [ack]
    assert ack.message == {"envelope_id": delivery.envelope_id}
    assert slack.message(CARE, ts).text == "claimed" and slack.message(CARE, ts).blocks == []
    (opened,) = slack.calls_to("apps.connections.open")
    assert opened.ok and opened.response["url"].startswith(f"ws://127.0.0.1:{slack.port}/")
    assert len(slack.calls_to("auth.test")) == 1  # Bolt's token check ran against the fake
    assert (connection.open, connection.closed_by, connection.close_code) == (False, "app", 1000)
    with pytest.raises(RuntimeError, match="no app is connected"):
        await slack.socket_send(request)


async def test_socket_mode_slash_command_ack_payload_and_view_submission_response_action(
    slack: FakeSlack,
) -> None:
    app = AsyncApp(client=web_client(slack))
    submitted: list[str] = []

    @app.command("/case")
    async def open_modal(ack: Any, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack(text=f"Opening case {command['text']}")
        await client.views_open(
            trigger_id=command["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "resolve",
                "title": {"type": "plain_text", "text": "Resolve"},
                "submit": {"type": "plain_text", "text": "Save"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "note",
                        "label": {"type": "plain_text", "text": "Note"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.view("resolve")
    async def resolve(ack: Any, view: dict[str, Any]) -> None:
        note = view["state"]["values"]["note"]["text"]["value"]
        if not note:
            await ack(response_action="errors", errors={"note": "Say something"})
            return
        await ack()
        submitted.append(note)

    async with socket_mode(app, slack):
        await slack.socket_connected()
        command = await slack.socket_send(slack.slash_command("/case", "12", channel=CARE))
        assert command is not None and command.payload == {"text": "Opening case 12"}
        envelope = slack.socket_deliveries[-1].envelope
        assert envelope["type"] == "slash_commands" and envelope["accepts_response_payload"]
        assert envelope["payload"]["command"] == "/case" and "retry_attempt" not in envelope
        (shown,) = slack.ephemerals_for("U0USER001")
        assert (shown.text, shown.via, shown.channel) == ("Opening case 12", "ack", CARE)

        await eventually(lambda: bool(slack.views))
        modal = slack.latest_view()
        empty = await slack.socket_send(slack.view_submission(values={"note": {"text": ""}}))
        assert empty is not None
        assert empty.payload == {"response_action": "errors", "errors": {"note": "Say something"}}
        assert modal.errors == {"note": "Say something"} and not modal.closed
        filled = await slack.socket_send(slack.view_submission(values={"note": {"text": "ok"}}))
        assert filled is not None and filled.payload is None
        assert modal.closed and submitted == ["ok"]
    assert [d.type for d in slack.socket_deliveries] == [
        "slash_commands",
        "interactive",
        "interactive",
    ]


async def test_socket_mode_events_late_acks_and_reconnects(slack: FakeSlack) -> None:
    app = AsyncApp(client=web_client(slack))
    retries: list[str | None] = []

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any, request: Any) -> None:
        retries.append(request.headers.get("x-slack-retry-num", [None])[0])
        await say(text="on it", thread_ts=event["ts"])

    @app.action("claim")
    async def slow_claim(ack: Any) -> None:
        await asyncio.sleep(0.3)
        await ack()

    async with socket_mode(app, slack):
        first = await slack.socket_connected()
        message = slack.post_as_user(CARE, "<@U0BOT0001> status?")
        event = slack.message_event(message, event_type="app_mention")
        request = slack.event_callback(event, retry_num=1, retry_reason="timeout")
        assert await slack.socket_send(request) is not None
        envelope = slack.socket_deliveries[-1].envelope
        assert envelope["type"] == "events_api" and not envelope["accepts_response_payload"]
        assert (envelope["retry_attempt"], envelope["retry_reason"]) == (1, "timeout")
        await eventually(lambda: bool(slack.thread(CARE, message.ts)))
        assert retries == ["1"] and slack.thread(CARE, message.ts)[0].text == "on it"

        await web_client(slack).chat_postMessage(channel=CARE, text="Case", blocks=CLAIM_BLOCKS)
        slow = slack.block_actions(action_id="claim", channel=CARE)
        assert await slack.socket_send(slow, ack_timeout=0.1) is None
        late = slack.socket_deliveries[-1]
        assert late.timed_out and late.ack is None and not late.acked
        await eventually(lambda: late.ack is not None)
        assert late.ack is not None and late.ack.late and late.ack.seconds is not None
        assert late.ack.seconds >= 0.3 and not late.acked

        await slack.socket_disconnect("refresh_requested")  # the SDK drops it and reconnects
        second = await slack.socket_connected(count=2)
        assert (first.closed_by, first.close_code) == ("app", 1000)  # before the new one opened
        assert first.disconnects == ["refresh_requested"] and second.hello["num_connections"] == 1
        await slack.socket_disconnect(None, close=True)  # dropped without a word
        third = await slack.socket_connected(count=3)
        assert (second.open, second.closed_by, second.close_code) == (False, "fake", 1001)
        assert await slack.socket_send(slack.event_callback(event)) is not None
        assert slack.socket_deliveries[-1].connection == third.id
        assert slack.socket_deliveries[-1].envelope["retry_attempt"] == 0
    assert len(slack.calls_to("apps.connections.open")) == 3


async def test_apps_connections_open_takes_the_app_level_token_only(slack: FakeSlack) -> None:
    opened = await web_client(slack).apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack.port}/socket-mode/")
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        await web_client(slack).apps_connections_open(app_token=slack.bot_token)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await web_client(slack).apps_connections_open(app_token="xapp-1-wrong")
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        await AsyncWebClient(token=slack.app_token, base_url=slack.url).chat_postMessage(
            channel=CARE, text="an app token cannot post"
        )
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(opened["url"]) as ws:
            assert (await ws.receive_json())["type"] == "hello"
            await ws.send_json({"envelope_id": "never-sent"})
            await eventually(lambda: bool(slack.socket_acks))
        with pytest.raises(aiohttp.WSServerHandshakeError):  # a URL is good for one connection
            await session.ws_connect(opened["url"])
    assert slack.socket_acks[0].seconds is None and slack.socket_deliveries == []
    await slack.socket_disconnected()


# --------------------------------------------------------------------------- Telegram Bot API


def card_keyboard(*data: str) -> InlineKeyboardMarkup:
    """Build an inline keyboard with one button per callback_data."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d) for d in data]])


async def test_telegram_bot_sends_edits_and_is_told_when_nothing_changed(tg: FakeTelegram) -> None:
    tg.rate_limits_enabled = False  # nine sends and edits in a blink; limits have their own test
    async with Bot(tg.token, base_url=tg.url) as bot:
        sent = await bot.send_message(
            DEFAULT_GROUP,
            "<b>Case 12</b> &amp; co: new",
            parse_mode="HTML",
            reply_markup=card_keyboard("claim:12"),
        )
        assert sent.message_id == 1 and sent.text == "Case 12 & co: new"
        assert sent.entities[0].type == "bold" and sent.entities[0].length == 7
        card = tg.message(DEFAULT_GROUP, sent.message_id)
        assert card.raw_text == "<b>Case 12</b> &amp; co: new"
        assert card.callback_data() == ["claim:12"]

        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text(
                "<b>Case 12</b> &amp; co: new",
                chat_id=DEFAULT_GROUP,
                message_id=sent.message_id,
                parse_mode="HTML",
                reply_markup=card_keyboard("claim:12"),
            )
        await bot.edit_message_text(
            "<b>Case 12</b>: claimed by Alice",
            chat_id=DEFAULT_GROUP,
            message_id=sent.message_id,
            parse_mode="HTML",
            reply_markup=card_keyboard("resolve:12"),
        )
        card = tg.last_message(DEFAULT_GROUP)
        assert card.text == "Case 12: claimed by Alice" and card.callback_data() == ["resolve:12"]
        assert [e.text for e in card.edits] == ["Case 12 & co: new"]
        await bot.edit_message_reply_markup(DEFAULT_GROUP, sent.message_id, reply_markup=None)
        assert tg.last_message(DEFAULT_GROUP).keyboard() == []
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat_id=DEFAULT_GROUP, message_id=99)

        second = await bot.send_message(DEFAULT_GROUP, "plain", reply_to_message_id=1)
        assert second.message_id == 2 and second.reply_to_message.message_id == 1
        await bot.pin_chat_message(DEFAULT_GROUP, second.message_id)
        await bot.send_chat_action(DEFAULT_GROUP, "typing")
        assert tg.message(DEFAULT_GROUP, 2).pinned
        assert tg.chat_actions == [(DEFAULT_GROUP, "typing")]
        chat = await bot.get_chat(DEFAULT_GROUP)
        assert chat.type == "supergroup"


async def test_telegram_rejects_bad_html_long_text_and_long_callback_data(tg: FakeTelegram) -> None:
    async with Bot(tg.token, base_url=tg.url) as bot:
        with pytest.raises(BadRequest, match='unsupported start tag "br"'):
            await bot.send_message(DEFAULT_GROUP, "a<br>b", parse_mode="HTML")
        with pytest.raises(BadRequest, match="can't find end tag"):
            await bot.send_message(DEFAULT_GROUP, "<b>open", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(DEFAULT_GROUP, "1 < 2", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(DEFAULT_GROUP, "R&D", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(DEFAULT_GROUP, "<b>" + "x" * 4097 + "</b>", parse_mode="HTML")
        await bot.send_message(DEFAULT_GROUP, "<i>" + "x" * 4096 + "</i>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(DEFAULT_GROUP, "card", reply_markup=card_keyboard("é" * 33))
    assert [m.message_id for m in tg.messages(DEFAULT_GROUP)] == [1]
    assert [c.status for c in tg.calls_to("sendMessage")] == [400, 400, 400, 400, 400, 200, 400]


def test_telegram_html_parser_counts_utf16_and_decodes_entities() -> None:
    text, entities = parse_html('😀 <a href="https://x.test/?a=1&amp;b=2">link</a> &#65;&lt;')
    assert text == "😀 link A<"
    assert entities == [
        {"type": "text_link", "offset": 3, "length": 4, "url": "https://x.test/?a=1&b=2"}
    ]
    assert parse_html("R&D", strict_ampersand=False) == ("R&D", [])
    with pytest.raises(ValueError, match='must have class "tg-spoiler"'):
        parse_html("<span>x</span>")
    with pytest.raises(ValueError, match="Unmatched end tag"):
        parse_html("<b><i>x</b></i>")


async def test_telegram_callback_queries_are_answered_once(tg: FakeTelegram) -> None:
    async with Bot(tg.token, base_url=tg.url) as bot:
        sent = await bot.send_message(DEFAULT_GROUP, "card", reply_markup=card_keyboard("claim:12"))
        update = tg.callback_query_update(tg.message(DEFAULT_GROUP, sent.message_id), "claim:12")
        query_id = update["callback_query"]["id"]
        assert await bot.answer_callback_query(query_id, text="Claimed", show_alert=True)
        assert tg.callback_queries[query_id].answer == {"text": "Claimed", "show_alert": True}
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query(query_id)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query("12345")
        with pytest.raises(ValueError, match="no button"):
            tg.callback_query_update(tg.message(DEFAULT_GROUP, sent.message_id), "resolve:12")


async def test_telegram_chaos_is_seeded_and_failed_sends_are_not_applied(tg: FakeTelegram) -> None:
    tg.rate_limits_enabled = False
    tg.set_chaos(0.5, seed=11, methods=["sendMessage"], kinds=("ratelimited", "server_error"))
    async with Bot(tg.token, base_url=tg.url) as bot:
        for n in range(12):
            with contextlib.suppress(RetryAfter, NetworkError):
                await bot.send_message(DEFAULT_GROUP, f"m{n}")
    statuses = [c.status for c in tg.calls_to("sendMessage")]
    assert 200 in statuses and 429 in statuses and set(statuses) & {500, 502, 503}
    assert len(tg.messages(DEFAULT_GROUP)) == statuses.count(200)
    assert tg.calls_to("getMe")[0].fault is None  # bootstrap calls are left alone


async def test_telegram_flood_limits_answer_retry_after() -> None:
    clock = ManualClock()
    async with FakeTelegram(clock=clock) as tg, Bot(tg.token, base_url=tg.url) as bot:
        tg.fail_next("sendMessage", status=429, retry_after=7)
        with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
            await bot.send_message(42, "hi")

        for n in range(3):
            await bot.send_message(42, f"burst {n}")
        with pytest.raises(RetryAfter):
            await bot.send_message(42, "too fast for one chat")
        clock.advance(1.0)
        await bot.send_message(42, "a second later")

        # 20 per minute in a group, edits and sends alike: a bucket of 20 that gets one
        # back every 3 s. Sent a second apart, the 29th finds it empty.
        for _ in range(28):
            clock.advance(1.0)
            await bot.send_message(DEFAULT_GROUP, "group")
        clock.advance(1.0)
        await bot.send_message(DEFAULT_GROUP, "29th")
        clock.advance(1.0)
        with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
            await bot.send_message(DEFAULT_GROUP, "30th")
        tg.rate_limits_enabled = False
        await bot.send_message(DEFAULT_GROUP, "limits off")


async def test_telegram_group_budget_is_a_bucket_of_20_that_refills_one_every_3_s() -> None:
    clock = ManualClock()
    async with FakeTelegram(clock=clock, per_chat_burst=50) as tg, \
            Bot(tg.token, base_url=tg.url) as bot:
        for n in range(20):  # the bucket starts full
            await bot.send_message(DEFAULT_GROUP, f"card {n}")
        with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
            await bot.send_message(DEFAULT_GROUP, "21st, at once")
        clock.advance(2.9)
        with pytest.raises(RetryAfter, match="Retry in 1 seconds"):
            await bot.send_message(DEFAULT_GROUP, "21st, a little early")
        clock.advance(0.1)
        await bot.send_message(DEFAULT_GROUP, "21st, as its slot frees")  # not 40 s later
        with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
            await bot.send_message(DEFAULT_GROUP, "22nd, at once")
        clock.advance(3.0)
        await bot.send_message(DEFAULT_GROUP, "22nd")


async def test_telegram_faults_and_errors_reach_ptb(tg: FakeTelegram) -> None:
    async with Bot(tg.token, base_url=tg.url) as bot:
        tg.fail_next("sendMessage", status=502)
        with pytest.raises(NetworkError):
            await bot.send_message(7, "x")
        tg.timeout_next("sendMessage", delay=0.05)
        with pytest.raises(NetworkError):
            await bot.send_message(7, "swallowed")
        tg.timeout_next("sendMessage", delay=0.05, applied=True)
        with pytest.raises(NetworkError):
            await bot.send_message(7, "applied, answer lost")
        tg.slow_next("sendMessage", delay=2.0)
        with pytest.raises(TimedOut):
            await bot.send_message(7, "too slow", read_timeout=0.2)
        await asyncio.sleep(0.05)
        assert [m.text for m in tg.messages(7)] == ["applied, answer lost"]
        tg.fail_next("sendMessage", status=403, error="Forbidden: bot was blocked by the user")
        with pytest.raises(Exception, match="blocked by the user"):
            await bot.send_message(7, "x")
    with pytest.raises(InvalidToken):
        async with Bot("42:wrong", base_url=tg.url) as wrong:
            await wrong.get_me()


async def test_telegram_files_are_sent_as_multipart(tg: FakeTelegram) -> None:
    async with Bot(tg.token, base_url=tg.url) as bot:
        sent = await bot.send_document(
            DEFAULT_GROUP,
            document=b"case,status\n12,open\n",
            filename="digest.csv",
            caption="<b>Daily</b> digest",
            parse_mode="HTML",
        )
        assert sent.document.file_name == "digest.csv" and sent.caption == "Daily digest"
        photo = await bot.send_photo(DEFAULT_GROUP, photo=b"\x89PNG fake", caption="chart")
        assert photo.photo[-1].file_size == 9
    stored = tg.message(DEFAULT_GROUP, sent.message_id)
    assert stored.media is not None and stored.media["size"] == 20
    assert stored.media["filename"] == "digest.csv" and stored.raw_caption == "<b>Daily</b> digest"
    assert tg.calls_to("sendDocument")[0].params["document"]["filename"] == "digest.csv"


async def test_telegram_get_updates_honours_offsets_and_wakes_long_polls(tg: FakeTelegram) -> None:
    async with Bot(tg.token, base_url=tg.url) as bot:
        first = tg.push_update(tg.private_message_update("hello"))
        second = tg.push_update(tg.command_update("claim", "12"))
        updates = await bot.get_updates()
        assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
        assert [u.update_id for u in await bot.get_updates(offset=second["update_id"])] == [
            second["update_id"]
        ]
        assert await bot.get_updates(offset=second["update_id"] + 1) == ()
        assert tg.pending_updates == []

        async def push_later() -> None:
            await asyncio.sleep(0.05)
            tg.push_update(tg.private_message_update("late"))

        pusher = asyncio.create_task(push_later())
        started = time.monotonic()
        woken = await bot.get_updates(timeout=5)
        await pusher
        assert [u.message.text for u in woken] == ["late"] and time.monotonic() - started < 2

        await bot.set_my_commands([("claim", "Claim a case"), ("queue", "Show the queue")])
        assert [c.command for c in await bot.get_my_commands()] == ["claim", "queue"]
        await bot.set_webhook("http://127.0.0.1:9/telegram", secret_token="s3cret")
        assert (await bot.get_webhook_info()).url == "http://127.0.0.1:9/telegram"
        with pytest.raises(Conflict):
            await bot.get_updates()
        await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""


async def test_ptb_application_polls_and_its_callback_handler_runs(tg: FakeTelegram) -> None:
    app = ApplicationBuilder().token(tg.token).base_url(tg.url).build()
    pressed = asyncio.Event()

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await query.answer("Claimed")
        await query.edit_message_text(f"claimed by {query.from_user.first_name}")
        pressed.set()

    app.add_handler(CallbackQueryHandler(on_press, pattern=r"^claim:"))
    async with app:
        card = await app.bot.send_message(
            DEFAULT_GROUP, "Case 12", reply_markup=card_keyboard("claim:12")
        )
        await app.updater.start_polling(poll_interval=0.0, timeout=timedelta(seconds=5))
        await app.start()
        bob = make_user(2002, "Bob", username="bob_agent")
        stored_card = tg.message(DEFAULT_GROUP, card.message_id)
        tg.push_update(tg.callback_query_update(stored_card, "claim:12", from_user=bob))
        await asyncio.wait_for(pressed.wait(), 3)
        await app.updater.stop()
        await app.stop()
    assert tg.last_message(DEFAULT_GROUP).text == "claimed by Bob"
    assert tg.last_message(DEFAULT_GROUP).keyboard() == []  # edit without markup drops it
    assert [q.answer for q in tg.callback_queries.values()] == [{"text": "Claimed"}]
    assert tg.pending_updates == []  # the final getUpdates confirmed the offset
    assert tg.calls_to("getMe")


async def test_webhook_delivery_runs_a_group_command_with_the_bot_mention(
    tg: FakeTelegram,
) -> None:
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(tg.token).base_url(tg.url).updater(None).build()
    )
    seen: list[list[str]] = []

    async def claim(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(list(context.args or []))
        await update.effective_message.reply_html(f"<b>Case {context.args[0]}</b> is yours")

    app.add_handler(CommandHandler("claim", claim))

    async def webhook(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "s3cret":
            return web.Response(status=403)
        await app.process_update(Update.de_json(await request.json(), app.bot))
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/telegram", webhook)
    runner, origin = await serve(receiver)
    try:
        async with app:
            await app.bot.set_webhook(f"{origin}/telegram", secret_token="s3cret")
            update = tg.command_update("claim", "12", mention_bot=True)
            message = update["message"]
            assert message["text"] == "/claim@socialcare_test_bot 12"
            assert message["entities"] == [{"offset": 0, "length": 26, "type": "bot_command"}]
            assert (await tg.deliver_webhook(update)).status == 200
            assert (await tg.deliver_webhook(update, secret_token="")).status == 403
            reply = tg.reply_update(tg.last_message(DEFAULT_GROUP), "thanks")
            assert reply["message"]["reply_to_message"]["text"] == "Case 12 is yours"
    finally:
        await runner.cleanup()
    assert seen == [["12"]]
    assert tg.last_message(DEFAULT_GROUP).reply_to_message_id == message["message_id"]
    assert json.loads(json.dumps(tg.calls_to("sendMessage")[0].params))["parse_mode"] == "HTML"
