"""Hostile input on every route that strangers reach: a 4xx with the reason, never a
5xx, before the signature is checked and after it, on the back end under test.

The bodies: JSON nested thousands deep, bytes that are not UTF-8, a form whose payload
is cut, JSON of the wrong type, NUL characters, absurd dates and numbers, and bodies
over the route's limit sent chunked (without a Content-Length).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from socialcare.adapters.collectors.push import hmac_sha256
from socialcare.adapters.collectors.signature import sign
from socialcare.bot import handoffs
from socialcare.bot.model import EventKind
from socialcare.handlers.chat import service
from socialcare.storage.schema import cases
from tests.conftest import FlowingClock
from tests.e2e.chat import HANDOFF_SECRET, SECRET, TELEGRAM_SECRET, Chat, mention, running_chat
from tests.e2e.test_collectors import META_VERIFY, YOUSCAN_SECRET, _each, _enable

META_APP_SECRET = "meta-app-secret-for-hostile-tests"
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
NOT_UTF8 = b'{"text": "Kcell \xff\xfe"}'
NUL = b'{"external_id": "a\x00b", "text": "Kcell\x00"}'
WRONG_TYPES = [b"[]", b'"x"', b"5", b"null", b"true", b"[5]"]
HOSTILE = [DEEP, DEEP_OBJECT, NOT_UTF8, NUL, b'{"source": "webhook", ', *WRONG_TYPES]
MIB = 1024 * 1024


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start:start + 64 * 1024]


async def _post(chat: Chat, path: str, body: bytes, headers: dict[str, str] | None = None,
                *, chunked: bool = False) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(
        f"{chat.base_url}{path}", data=_chunked(body) if chunked else body,
        headers=headers or {},
    ) as response:
        return response.status, await response.text()


def _config() -> Callable[[str], str]:
    return _each(_enable("youscan"), _enable("meta"))


@pytest.fixture
async def chat(tmp_path: Path, flowing_clock: FlowingClock,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Chat]:
    monkeypatch.setenv("YOUSCAN_SECRET", YOUSCAN_SECRET)
    monkeypatch.setenv("META_APP_SECRET", META_APP_SECRET)
    monkeypatch.setenv("META_VERIFY_TOKEN", META_VERIFY)
    monkeypatch.setenv("META_PAGE_TOKEN", "meta-page-token-for-hostile-tests")
    async with running_chat(tmp_path, flowing_clock, config=_config()) as running:
        yield running


async def _cases(chat: Chat) -> int:
    async with chat.deps.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(cases))).scalar_one()


def _failures(answers: dict[str, tuple[int, str]], expected: dict[str, int]) -> dict[str, Any]:
    """The answers that are not what was expected: {name: (status, body)}."""
    return {name: (status, text[:200]) for name, (status, text) in answers.items()
            if status != expected[name]}


def _mention_json(chat: Chat, external_id: str, **changes: Any) -> dict[str, Any]:
    return mention(external_id, published=chat.clock.now(), **changes)


# --------------------------------------------------------------------------- /ingest


async def test_ingest_refuses_hostile_bodies_unsigned_with_401_and_signed_with_400(
    chat: Chat
) -> None:
    def signed(body: bytes) -> dict[str, str]:
        return {"X-Signature": sign(body, SECRET)}

    def dated(at: str) -> bytes:
        good = _mention_json(chat, "good-1")
        return json.dumps([good, {**good, "external_id": "bad-1", "published_at": at}]).encode()

    answers, expected = {}, {}
    for n, body in enumerate(HOSTILE):
        answers[f"unsigned {n}"] = await _post(chat, "/ingest", body,
                                               {"X-Signature": "sha256=00"})
        expected[f"unsigned {n}"] = 401
        answers[f"signed {n}"] = await _post(chat, "/ingest", body, signed(body))
        expected[f"signed {n}"] = 400
    for at in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
               "1999-12-31T23:59:59+00:00"):
        body = dated(at)
        answers[at] = await _post(chat, "/ingest", body, signed(body))
        expected[at] = 400
    huge = json.dumps([_mention_json(chat, "big", text="Kcell " * 200_000)]).encode()
    answers["huge unsigned"] = await _post(chat, "/ingest", huge, chunked=True)
    answers["huge signed"] = await _post(chat, "/ingest", huge, signed(huge), chunked=True)
    expected |= {"huge unsigned": 413, "huge signed": 413}

    assert _failures(answers, expected) == {}
    assert "nested deeper than 64 levels" in answers["signed 0"][1]
    assert "not UTF-8" in answers["signed 2"][1]
    assert "[1].published_at: 0001-01-01T00:00:00+05:00 is out of range" in \
        answers["0001-01-01T00:00:00+05:00"][1]
    assert await _cases(chat) == 0


async def test_nul_in_a_mention_is_dropped_before_dedupe_so_a_repeat_without_it_is_one(
    chat: Chat
) -> None:
    first = await chat.ingest(_mention_json(chat, "a\x00b", thread_id="t\x00", platform="vk\x00"))
    again = await chat.ingest(_mention_json(chat, "ab"))
    async with chat.deps.uow() as uow:
        [stored] = await uow.mentions.for_case(first[0]["case_id"])

    assert first == [{"external_id": "ab", "outcome": "created", "case_id": 1}]
    assert again == [{"external_id": "ab", "outcome": "dropped", "reason": "duplicate"}]
    assert (stored.external_id, stored.thread_key, stored.platform) == ("ab", "t", "vk")


# --------------------------------------------------------------------------- /ingest/{name}


async def test_a_mapped_webhook_refuses_hostile_bodies_before_and_after_its_signature(
    chat: Chat
) -> None:
    def signed(body: bytes) -> dict[str, str]:
        return {"X-Signature": "sha256=" + hmac_sha256(YOUSCAN_SECRET, body)}

    def item(**changes: Any) -> bytes:
        good = {"id": "ys-1", "text": "Kcell, no signal", "published": chat.clock.now().isoformat()}
        return json.dumps({"mentions": [good, {**good, "id": "ys-2", **changes}]}).encode()

    bodies = {
        **{f"hostile {n}": body for n, body in enumerate(HOSTILE)},
        "mentions a number": b'{"mentions": 5}',
        "year 1": item(published="0001-01-01T00:00:00+05:00"),
        "year 9999": item(published="9999-12-31T23:59:59-05:00"),
        "id too long": item(id="x" * 300),
        "id of NUL": item(id="\x00"),
    }
    answers, expected = {}, {}
    for name, body in bodies.items():
        answers[f"unsigned {name}"] = await _post(chat, "/ingest/youscan", body)
        answers[f"signed {name}"] = await _post(chat, "/ingest/youscan", body, signed(body))
        expected |= {f"unsigned {name}": 401, f"signed {name}": 400}
    huge = b'{"mentions": [' + b'{"id": "x", "text": "Kcell"},' * 40_000 + b"{}]}"
    answers["huge"] = await _post(chat, "/ingest/youscan", huge, signed(huge), chunked=True)
    expected["huge"] = 413

    assert _failures(answers, expected) == {}
    assert "[1]: published_at: 0001-01-01T00:00:00+05:00 is out of range" in \
        answers["signed year 1"][1]
    assert await _cases(chat) == 0


# --------------------------------------------------------------------------- /meta/{name}


async def test_meta_refuses_hostile_deliveries_with_4xx_before_and_after_the_signature(
    chat: Chat
) -> None:
    def signed(body: bytes) -> dict[str, str]:
        return {"X-Hub-Signature-256": "sha256=" + hmac_sha256(META_APP_SECRET, body)}

    def feed(**value: Any) -> bytes:
        good = {"item": "comment", "verb": "add", "post_id": "1_2", "comment_id": "2_3",
                "message": "Kcell, my SIM is blocked",
                "created_time": int(chat.clock.now().timestamp()),
                "from": {"id": "42", "name": "Aliya"}}
        return json.dumps({"object": "page", "entry": [
            {"changes": [{"field": "feed", "value": {**good, **value}}]}]}).encode()

    bodies = {
        **{f"hostile {n}": body for n, body in enumerate(HOSTILE)},
        "entry a number": b'{"object": "page", "entry": 5}',
        "message a number": feed(message=5),
        "created_time 10^20": feed(created_time=10**20),
        "created_time 1970": feed(created_time=0),
        "from a string": feed(**{"from": "Aliya"}),
    }
    answers, expected = {}, {}
    for name, body in bodies.items():
        answers[f"unsigned {name}"] = await _post(chat, "/meta/meta", body)
        answers[f"signed {name}"] = await _post(chat, "/meta/meta", body, signed(body))
        expected |= {f"unsigned {name}": 401, f"signed {name}": 400}
    huge = feed(message="Kcell " * 200_000)
    answers["huge"] = await _post(chat, "/meta/meta", huge, signed(huge), chunked=True)
    expected["huge"] = 413
    answers["good"] = await _post(chat, "/meta/meta", feed(), signed(feed()))
    expected["good"] = 200

    assert _failures(answers, expected) == {}
    assert "entry[0].changes[0].value.message: expected text, got int" in \
        answers["signed message a number"][1]
    assert await _cases(chat) == 1


# --------------------------------------------------------------------------- /handoff/{team}


async def test_a_hand_back_refuses_hostile_bodies_and_absurd_case_numbers(chat: Chat) -> None:
    def signed(body: bytes) -> dict[str, str]:
        return {"X-Signature": sign(body, HANDOFF_SECRET)}

    bodies = {
        **{f"hostile {n}": body for n, body in enumerate(HOSTILE)},
        "case 2^63": b'{"case_id": 9223372036854775808}',
        "case 2^70": b'{"case_id": 1180591620717411303424}',
        "case 0": b'{"case_id": 0}',
        "case 1.5": b'{"case_id": 1.5}',
        "case as text": b'{"case_id": "1"}',
        "note a list": b'{"case_id": 1, "note": ["x"]}',
    }
    answers, expected = {}, {}
    for name, body in bodies.items():
        answers[f"unsigned {name}"] = await _post(chat, "/handoff/billing", body)
        answers[f"signed {name}"] = await _post(chat, "/handoff/billing", body, signed(body))
        expected |= {f"unsigned {name}": 401, f"signed {name}": 400}
    big = json.dumps({"case_id": 1, "note": "x" * 70_000}).encode()
    answers["65 KiB unsigned"] = await _post(chat, "/handoff/billing", big, chunked=True)
    answers["65 KiB signed"] = await _post(chat, "/handoff/billing", big, signed(big),
                                           chunked=True)
    last = b'{"case_id": 9223372036854775807}'
    answers["case 2^63 - 1"] = await _post(chat, "/handoff/billing", last, signed(last))
    expected |= {"65 KiB unsigned": 413, "65 KiB signed": 413, "case 2^63 - 1": 404}

    assert _failures(answers, expected) == {}


async def test_a_hand_back_note_with_nul_is_stored_without_it(chat: Chat) -> None:
    [made] = await chat.ingest(_mention_json(chat, "ig-1", text="Kcell charged me twice"))
    case_id = made["case_id"]
    await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "billing"), **service(chat.deps))
    body = json.dumps({"case_id": case_id, "note": "Refund\x00 issued"}).encode()

    status, _ = await _post(chat, "/handoff/billing", body,
                            {"X-Signature": sign(body, HANDOFF_SECRET)})
    async with chat.deps.uow() as uow:
        events = await uow.events.for_case(case_id)

    assert status == 200
    [back] = [e for e in events if e.kind is EventKind.HANDED_BACK]
    assert back.data["note"] == "Refund issued"


# --------------------------------------------------------------------------- /slack/events


def _slack_headers(chat: Chat, body: bytes, content_type: str, *,
                   secret: str | None = None) -> dict[str, str]:
    """Slack's headers for `body`, signed as Slack signs: the raw bytes (which the SDK's
    signer, decoding them first, cannot do for bytes that are not UTF-8)."""
    timestamp = str(int(time.time()))
    key = (secret or chat.slack.signing_secret).encode()
    digest = hmac.new(key, f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}"}


async def test_slack_events_checks_the_signature_before_reading_and_refuses_unreadable(
    chat: Chat
) -> None:
    form, as_json = "application/x-www-form-urlencoded", "application/json"
    bodies = {
        "deep json": (DEEP, as_json),
        "deep object": (DEEP_OBJECT, as_json),
        "cut payload": (b"payload={bad", form),
        "deep payload": (b"payload=" + DEEP, form),
        "not utf-8": (NOT_UTF8, as_json),
        "not utf-8 form": (b"payload=%7B%7D&text=\xff", form),
        "a number": (b"5", as_json),
        "a list": (b"[]", as_json),
        "payload a list": (b"payload=%5B%5D", form),
        "nul": (b'{"type": "event_callback", "event": {"text": "\x00"}', as_json),
    }
    answers, expected = {}, {}
    for name, (body, content_type) in bodies.items():
        forged = _slack_headers(chat, body, content_type, secret="not-the-secret")
        answers[f"forged {name}"] = await _post(chat, "/slack/events", body, forged)
        answers[f"unsigned {name}"] = await _post(chat, "/slack/events", body,
                                                  {"Content-Type": content_type})
        answers[f"signed {name}"] = await _post(chat, "/slack/events", body,
                                                _slack_headers(chat, body, content_type))
        # Slack sends UTF-8 only: other bytes cannot be verified, so they are not signed.
        signed = 401 if name.startswith("not utf-8") else 400
        expected |= {f"forged {name}": 401, f"unsigned {name}": 401, f"signed {name}": signed}
    body = b"payload={bad"
    for stamp in ("abc", "", "1e9", "-5", "\u0661\u0662"):
        headers = _slack_headers(chat, body, form) | {"X-Slack-Request-Timestamp": stamp}
        answers[f"timestamp {stamp!r}"] = await _post(chat, "/slack/events", body, headers)
        expected[f"timestamp {stamp!r}"] = 401
    huge = b"payload=" + b"x" * (2 * MIB)
    answers["huge forged"] = await _post(chat, "/slack/events", huge, chunked=True)
    answers["huge signed"] = await _post(chat, "/slack/events", huge,
                                         _slack_headers(chat, huge, form), chunked=True)
    expected |= {"huge forged": 413, "huge signed": 413}

    assert _failures(answers, expected) == {}


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Logs from INFO up, as `socialcare run` keeps them, set before the app starts (Bolt's
    logger takes the level the root logger has when the app is made)."""
    caplog.set_level(logging.INFO)
    return caplog


async def test_a_forged_slack_request_is_logged_in_one_line_without_its_body(
    info_logs: pytest.LogCaptureFixture, chat: Chat
) -> None:
    junk = b"command=%2Fqueue&text=" + b"J" * 900_000
    caplog = info_logs

    status, _ = await _post(chat, "/slack/events", junk, _slack_headers(
        chat, junk, "application/x-www-form-urlencoded", secret="not-the-secret"))

    about = [r for r in caplog.records if "JJJJ" in r.getMessage() or "signature" in
             r.getMessage().lower()]
    assert status == 401
    assert len(about) == 1
    assert "JJJJ" not in about[0].getMessage()
    assert len(about[0].getMessage()) < 200
    # Whatever else the running app logs meanwhile, nothing near the body's size.
    assert sum(len(r.getMessage()) for r in caplog.records) < 50_000


# --------------------------------------------------------------------------- /telegram/webhook


async def test_the_telegram_webhook_refuses_what_is_no_update_after_its_secret(
    chat: Chat
) -> None:
    secret = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
    bodies = {**{f"hostile {n}": body for n, body in enumerate(HOSTILE)},
              "no update id": b"{}", "update id a list": b'{"update_id": []}'}
    answers, expected = {}, {}
    for name, body in bodies.items():
        answers[f"wrong secret {name}"] = await _post(chat, "/telegram/webhook", body, wrong)
        answers[f"secret {name}"] = await _post(chat, "/telegram/webhook", body, secret)
        expected |= {f"wrong secret {name}": 403, f"secret {name}": 400}
    huge = b'{"update_id": 1, "message": {"text": "' + b"x" * (2 * MIB) + b'"}}'
    answers["huge"] = await _post(chat, "/telegram/webhook", huge, secret, chunked=True)
    expected["huge"] = 413

    assert _failures(answers, expected) == {}
