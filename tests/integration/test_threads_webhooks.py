"""Threads webhooks: the endpoint check, signed deliveries of replies and mentions read
into the very mentions polling makes of them (so one of the two is a duplicate), and
hostile deliveries refused — before the signature check and after it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from socialcare.adapters.collectors import threads
from socialcare.adapters.collectors.push import Pushed, Refused
from socialcare.adapters.collectors.threads_webhooks import ThreadsWebhooks
from socialcare.bot.model import RawMention, Tier
from socialcare.bot.pipeline import DropReason, Outcome, Pipeline
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.fakes.meta import meta_json, sign
from tests.fakes.server import ManualClock
from tests.fakes.threads import APP_SECRET, USER_ID, FakeThreads

SOURCE = Source(name="threads", kind="threads", platform="threads", tier=Tier.MAIN,
                brand="Kcell")
VERIFY = "threads-verify-7c1e"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeThreads]:
    async with FakeThreads(now=clock.now, clock=ManualClock(), rate_limits=False) as server:
        yield server


@pytest.fixture
def webhooks() -> ThreadsWebhooks:
    return ThreadsWebhooks(user_id=USER_ID, app_secret=APP_SECRET, verify_token=VERIFY)


def signed(body: Any, *, secret: str = APP_SECRET) -> Pushed:
    raw = body if isinstance(body, bytes) else meta_json(body)
    return Pushed(query={}, headers={"X-Hub-Signature-256": sign(raw, secret)}, body=raw)


async def refused(webhooks: ThreadsWebhooks, pushed: Pushed) -> tuple[int, str]:
    with pytest.raises(Refused) as refusal:
        await webhooks.receive(SOURCE, pushed, now=T0)
    return refusal.value.status, str(refusal.value)


def test_the_endpoint_check_echoes_the_challenge_only_with_the_verify_token(
    webhooks: ThreadsWebhooks,
) -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "8472"}

    assert webhooks.challenge(ok) == "8472"
    for query, status in (({**ok, "hub.verify_token": "guess"}, 403),
                          ({**ok, "hub.mode": "unsubscribe"}, 400),
                          ({"hub.verify_token": VERIFY}, 400)):
        with pytest.raises(Refused) as refusal:
            webhooks.challenge(query)
        assert refusal.value.status == status


async def test_a_delivered_reply_and_mention_are_the_mentions_polling_makes_of_them(
    http: aiohttp.ClientSession, fake: FakeThreads, clock: FakeClock, webhooks: ThreadsWebhooks
) -> None:
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    reply = fake.add_reply(post, "Roaming is broken", username="bolat",
                           at=T0 - timedelta(minutes=3))
    nested = fake.add_reply(reply, "Same in Tashkent", username="aida_k",
                            at=T0 - timedelta(minutes=2))
    tagged = fake.add_post("@kcell_kz no signal in Aksay", T0 - timedelta(minutes=1),
                           username="erlan", mentions_brand=True)

    delivered = [m for item in (fake.reply_webhook(reply), fake.reply_webhook(nested),
                                fake.mention_webhook(tagged))
                 for m in await webhooks.receive(SOURCE, signed(item), now=T0)]
    options = threads.Options(api_url=fake.url, user_id=USER_ID, token_env="TH_TOKEN")
    polled = await threads.ThreadsCollector(http, options, token=fake.token,
                                            clock=clock).poll(SOURCE, {})

    assert sorted(delivered, key=lambda m: m.external_id) == \
        sorted(polled.mentions, key=lambda m: m.external_id)
    by_id = {m.external_id: m for m in delivered}
    assert (by_id[nested.id].thread_id, by_id[nested.id].parent_id) == (
        f"{post.id}:aida_k", reply.id)
    assert by_id[tagged.id].thread_id == f"{tagged.id}:erlan"


async def test_the_polled_copy_of_a_delivered_reply_is_a_duplicate(
    http: aiohttp.ClientSession, fake: FakeThreads, storage: Storage,
    webhooks: ThreadsWebhooks,
) -> None:
    clock = FakeClock()
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    reply = fake.add_reply(post, "Roaming is broken", username="bolat",
                           at=T0 - timedelta(minutes=3))
    pipeline = Pipeline(make_team(sources=(SOURCE,)), clock=clock)
    delivered = await webhooks.receive(SOURCE, signed(fake.reply_webhook(reply)), now=T0)
    first = await pipeline.ingest(delivered, uow=storage.uow())
    options = threads.Options(api_url=fake.url, user_id=USER_ID, token_env="TH_TOKEN")
    polled = await threads.ThreadsCollector(http, options, token=fake.token,
                                            clock=clock).poll(SOURCE, {})
    again = await pipeline.ingest(polled.mentions, uow=storage.uow())

    assert [r.outcome for r in first] == [Outcome.CREATED]
    assert [(r.outcome, r.reason) for r in again] == [(Outcome.DROPPED, DropReason.DUPLICATE)]


async def test_other_fields_and_items_without_text_or_of_another_profile_are_left_alone(
    fake: FakeThreads, webhooks: ThreadsWebhooks
) -> None:
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    reply = fake.add_reply(post, "Roaming is broken", username="bolat", at=T0)
    elsewhere = fake.reply_webhook(reply)
    elsewhere["values"]["value"]["root_post"]["owner_id"] = "17841400000000999"
    photo = fake.reply_webhook(reply)
    del photo["values"]["value"]["text"]
    publish = {"app_id": "1", "topic": "moderate", "values": {
        "field": "publish", "value": {"id": "18000000000000777", "timestamp": "x"}}}

    for body in (elsewhere, photo, publish, {**publish, "values": []}):
        assert await webhooks.receive(SOURCE, signed(body), now=T0) == []


async def test_unsigned_or_forged_deliveries_are_refused_before_they_are_read(
    fake: FakeThreads, webhooks: ThreadsWebhooks
) -> None:
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    good = meta_json(fake.reply_webhook(fake.add_reply(post, "Hi", username="b", at=T0)))
    deep = b"[" * 100_000 + b"]" * 100_000
    hostile = [good, deep, b"\x00" * 64, b'{"values": {"value": {"id": {"$gt": ""}}}}',
               json.dumps({"values": {"field": "replies", "value": {
                   "id": "1", "text": "x", "timestamp": "0001-01-01T00:00:00+0000"}}}).encode()]

    answers = [await refused(webhooks, Pushed(query={}, headers=headers, body=body))
               for body in hostile
               for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                               {"X-Hub-Signature-256": sign(body, "not-the-app-secret")},
                               {"X-Hub-Signature-256": "sha256=\x00"})]

    assert {status for status, _ in answers} == {401}
    assert {reason for _, reason in answers} == {"bad or missing X-Hub-Signature-256 signature"}


async def test_signed_but_malformed_deliveries_get_400_naming_what_is_wrong(
    fake: FakeThreads, webhooks: ThreadsWebhooks
) -> None:
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    good = fake.reply_webhook(fake.add_reply(post, "Hi", username="bolat", at=T0))

    def with_value(**changes: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(good))
        body["values"]["value"].update(changes)
        return body

    cases: list[tuple[Any, str]] = [
        (b'{"values": ', "malformed JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON: nested too deeply"),
        (b"\xff\xfe", "malformed JSON"),
        ([good], "expected a JSON object, got list"),
        ({**good, "values": "replies"}, "values: expected an object with field and value"),
        ({**good, "values": [good["values"]] * 101}, "more than 100 notifications"),
        ({**good, "values": {"field": ["replies"], "value": {}}}, "values.field: "),
        ({**good, "values": {"field": "replies", "value": "x"}}, "values.value: "),
        ({**good, "values": [{"field": "replies"}]}, "values[0].value: Field required"),
        (with_value(id={"nested": {"deeper": [1, 2, 3]}}), "values.value.id: "),
        (with_value(id="18000\x00000001"), "values.value.id: String should match"),
        (with_value(id=True), "values.value.id: "),
        (with_value(text=12345), "values.value.text: Input should be a valid string"),
        (with_value(text="x" * 100_001), "values.value.text: String should have at most"),
        (with_value(username="bo\x00lat"), "values.value.username: String should match"),
        (with_value(username="a" * 65), "values.value.username: String should match"),
        (with_value(timestamp=1e308), "values.value.timestamp: Input should be a valid string"),
        (with_value(root_post={"id": None}), "values.value.root_post.id: "),
        (with_value(replied_to=[]), "values.value.replied_to: "),
    ]

    for body, reason in cases:
        status, said = await refused(webhooks, signed(body))
        assert (status, reason in said) == (400, True), (body if isinstance(body, bytes)
                                                         else None, said)


async def test_absurd_dates_and_nul_in_the_text_are_read_safely(
    fake: FakeThreads, webhooks: ThreadsWebhooks, storage: Storage
) -> None:
    post = fake.add_post("New tariffs", T0 - timedelta(days=1))
    good = fake.reply_webhook(fake.add_reply(post, "Hi", username="bolat", at=T0))
    bodies = []
    for n, (stamp, text) in enumerate((
            ("0001-01-01T00:00:00+0000", "Kcell, from year one"),
            ("9999-12-31T23:59:59+0000", "Kcell, from the far future"),
            ("2026-13-45T99:99:99+0000", "Kcell, a date that is none"),
            ("2026-11-25T09:00:00", "Kcell, no offset"),
            ("2026-11-25T09:00:00+0000", "Kcell\x00 with a NUL\x00 inside"))):
        body = json.loads(json.dumps(good))
        body["values"]["value"].update(id=str(18_100_000_000_000_000 + n), timestamp=stamp,
                                       text=text)
        bodies.append(body)
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    found: list[RawMention] = [m for body in bodies
                               for m in await webhooks.receive(SOURCE, signed(body), now=now)]
    results = await Pipeline(make_team(sources=(SOURCE,)), clock=FakeClock(now)).ingest(
        found, uow=storage.uow())
    async with storage.uow() as uow:
        stored = [(await uow.mentions.for_case(r.case_id))[0] for r in results
                  if r.case_id is not None]

    assert [m.published_at for m in found[:4]] == [
        now, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), now, now]
    assert found[4].published_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert [r.outcome for r in results] == [Outcome.CREATED] + [Outcome.JOINED] * 4
    assert all(m.published_at <= now for m in stored)  # the future is clamped to now
    assert "\x00" not in "".join(m.text for m in stored)
