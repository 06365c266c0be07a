"""Threads webhooks in the running app: Meta's endpoint check, a signed delivery becomes a
card at once, the same reply polled later is a duplicate — and the route answers hostile
requests with a 4xx, before its signature check and after it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from socialcare.storage.schema import cases, mentions
from tests.conftest import FlowingClock
from tests.e2e.chat import AIGERIM_SLACK, eventually, running_chat
from tests.e2e.test_collectors import _enable
from tests.fakes.meta import meta_json, sign
from tests.fakes.threads import APP_SECRET, CONVERSATION, LIMIT, FakeThreads

VERIFY = "threads-verify-for-chat-tests"
DUPLICATE = 'socialcare_mentions_total{outcome="dropped",reason="duplicate",source="threads"}'


def _with_webhooks(url: str) -> Any:
    return _enable("threads", ("user_id =", f'api_url = "{url}"\nuser_id ='),
                   ('# app_secret_env = "THREADS_APP_SECRET"',
                    'app_secret_env = "THREADS_APP_SECRET"'),
                   ('# verify_token_env = "THREADS_VERIFY_TOKEN"',
                    'verify_token_env = "THREADS_VERIFY_TOKEN"'))


async def _eventually_counted(base_url: str, line: str) -> bool:
    """Wait until /metrics shows `line` (a poll's outcomes are counted after its ingest)."""
    async def metrics() -> str:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{base_url}/metrics") as response:
            return await response.text()

    deadline = asyncio.get_running_loop().time() + 10
    while line not in await metrics():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _post(url: str, body: bytes, signature: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    async with aiohttp.ClientSession() as session, \
            session.post(url, data=body, headers=headers) as response:
        return response.status, (await response.json())["error"]


async def test_a_signed_reply_becomes_a_card_at_once_and_its_polled_copy_is_a_duplicate(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = flowing_clock.now
    async with FakeThreads(now=now, rate_limits=False) as th:
        post = th.add_post("Our new tariffs", now() - timedelta(days=1))
        monkeypatch.setenv("THREADS_TOKEN", th.token)
        monkeypatch.setenv("THREADS_APP_SECRET", APP_SECRET)
        monkeypatch.setenv("THREADS_VERIFY_TOKEN", VERIFY)
        async with running_chat(tmp_path, flowing_clock, config=_with_webhooks(th.url)) as chat:
            url = f"{chat.base_url}/threads/threads"
            await eventually(lambda: th.calls_to(LIMIT))  # the first poll is done
            challenge = await th.verify(url, VERIFY)
            wrong = await th.verify(url, "guess")
            nobody = await th.verify(f"{chat.base_url}/threads/autoforum", VERIFY)
            reply = th.add_reply(post, "Roaming does not work in Tashkent", username="bolat",
                                 at=now())
            forged = await th.deliver(th.reply_webhook(reply), url, signature="bad")
            delivered = await th.deliver(th.reply_webhook(reply), url)
            [card] = await eventually(lambda: chat.telegram_cards())
            polls = len(th.calls_to(CONVERSATION))
            flowing_clock.advance(minutes=3)  # the source is due again
            polled_copy = await _eventually_counted(chat.base_url, DUPLICATE + " 1.0")
            again = await th.deliver(th.reply_webhook(reply), url)  # Meta sending it twice
            answer = await chat.slack_command("/sources", user=AIGERIM_SLACK)
            [section] = answer.body["blocks"][0]["elements"]
            table = "".join(part["text"] for part in section["elements"])
            async with chat.deps.engine.connect() as conn:
                counted = [(await conn.execute(select(func.count()).select_from(t)))
                           .scalar_one() for t in (cases, mentions)]

    assert challenge == (200, "1158201444")
    assert wrong[0] == 403 and nobody[0] == 404
    assert forged.status == 401
    assert delivered.status == 200
    assert json.loads(delivered.text)["results"] == [
        {"external_id": reply.id, "outcome": "created", "case_id": 1}]
    assert "Tashkent" in (card.text or "")
    assert len(th.calls_to(CONVERSATION)) > polls  # polled after the delivery
    assert polled_copy  # the poll's copy of the reply was dropped as a duplicate
    assert json.loads(again.text)["results"][0]["reason"] == "duplicate"
    assert counted == [1, 1]
    assert "🟢 threads (threads, main)" in table
    assert "replies: 0 of 1000 a day" in table  # a delivery keeps the polls' note


async def test_the_route_answers_hostile_requests_with_4xx_before_and_after_the_signature(
    tmp_path: Path, flowing_clock: FlowingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = flowing_clock.now
    async with FakeThreads(now=now, rate_limits=False) as th:
        post = th.add_post("Our new tariffs", now() - timedelta(days=1))
        good = th.reply_webhook(th.add_reply(post, "Kcell, no signal", username="bolat",
                                             at=now()))
        monkeypatch.setenv("THREADS_TOKEN", th.token)
        monkeypatch.setenv("THREADS_APP_SECRET", APP_SECRET)
        monkeypatch.setenv("THREADS_VERIFY_TOKEN", VERIFY)

        def changed(**value: Any) -> bytes:
            body = json.loads(json.dumps(good))
            body["values"]["value"].update(value)
            return meta_json(body)

        deep = b'{"values": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        huge = meta_json({**good, "padding": "x" * (2 * 1024 * 1024)})
        hostile = {
            "deep JSON": deep,
            "wrong types": changed(id={"$gt": ""}, text=["Kcell"]),
            "NUL": changed(id="1800\x000001", username="bo\x00lat"),
            "absurd date": changed(timestamp=10**30),
            "not JSON": b"\x00" * 1024,
        }
        async with running_chat(tmp_path, flowing_clock, config=_with_webhooks(th.url)) as chat:
            url = f"{chat.base_url}/threads/threads"
            unsigned = {name: await _post(url, body, None) for name, body in hostile.items()}
            forged = {name: await _post(url, body, sign(body, "guess"))
                      for name, body in hostile.items()}
            signed = {name: await _post(url, body, sign(body, APP_SECRET))
                      for name, body in hostile.items()}
            too_big = await _post(url, huge, sign(huge, APP_SECRET))
            unknown = await _post(f"{chat.base_url}/threads/nobody", deep, None)
            fine = await th.deliver(good, url)
            async with chat.deps.engine.connect() as conn:
                stored = (await conn.execute(select(func.count()).select_from(mentions))
                          ).scalar_one()

    assert {status for status, _ in [*unsigned.values(), *forged.values()]} == {401}
    assert {name: status for name, (status, _) in signed.items()} == dict.fromkeys(hostile, 400)
    assert signed["deep JSON"][1] == "malformed JSON: nested too deeply"
    assert signed["wrong types"][1].startswith("values.value.id: ")
    assert signed["NUL"][1].startswith("values.value.id: String should match")
    assert signed["absurd date"][1].startswith("values.value.timestamp: ")
    assert signed["not JSON"][1].startswith("malformed JSON")
    assert too_big[0] == 413 and "over 1048576 bytes" in too_big[1]
    assert unknown[0] == 404 and "with webhooks" in unknown[1]
    assert fine.status == 200 and stored == 1  # and it keeps serving
