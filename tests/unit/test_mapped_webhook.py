"""Mapped webhooks: a listening platform's own JSON, checked and mapped by the config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from socialcare.adapters.collectors.mapped import (
    MAX_ITEMS,
    MappedReceiver,
    Options,
)
from socialcare.adapters.collectors.push import Pushed, Refused, hmac_sha256
from socialcare.bot.model import Author, RawMention, Tier
from socialcare.bot.team import Source

SOURCE = Source(name="youscan", kind="mapped", platform="web", tier=Tier.MAIN)
SECRET = "ys-secret-0c7d"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
FIELDS = {
    "external_id": "id",
    "text": "text",
    "published_at": "published",
    "url": "url",
    "platform": "source.type",
    "author_id": "author.id",
    "author_name": "author.fullName",
    "author_handle": "author.nickname",
    "author_url": "author.links.0",
    "thread_id": "post.id",
    "parent_id": "replyTo.0.id",
}
# Shaped like a YouScan mentions webhook: the list under "mentions", authors nested.
ITEM = {
    "id": 90817263,
    "text": "Kcell, the 4G in Almaty is down again",
    "published": "2026-11-25T09:58:00Z",
    "url": "https://www.instagram.com/p/C0ffee/",
    "source": {"type": "instagram", "name": "Instagram"},
    "author": {"id": 4401, "fullName": "Aigerim S.", "nickname": "@aigerim_s",
               "links": ["https://www.instagram.com/aigerim_s/", "https://aigerim.kz"]},
    "post": {"id": "C0ffee"},
    "replyTo": [{"id": "17890011"}],
}


def receiver(**options: Any) -> MappedReceiver:
    values: dict[str, Any] = {"secret_env": "YOUSCAN_SECRET", "items": "mentions",
                              "header": "X-YouScan-Signature", "fields": FIELDS}
    return MappedReceiver(Options.model_validate(values | options), SECRET)


def signed(body: Any, *, secret: str = SECRET) -> Pushed:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Pushed(query={}, headers={"X-YouScan-Signature": "sha256=" + hmac_sha256(secret, raw)},
                  body=raw)


async def refusal(mapped: MappedReceiver, pushed: Pushed) -> Refused:
    with pytest.raises(Refused) as refused:
        await mapped.receive(SOURCE, pushed, now=NOW)
    return refused.value


async def test_a_nested_body_maps_every_field_by_dotted_path_and_list_index() -> None:
    body = {"mentions": [ITEM, {"id": "90817264", "text": "Кселл, спасибо!"}], "total": 2}

    full, bare = await receiver().receive(SOURCE, signed(body), now=NOW)

    assert full == RawMention(
        source="youscan", external_id="90817263", text="Kcell, the 4G in Almaty is down again",
        published_at=datetime(2026, 11, 25, 9, 58, tzinfo=UTC),
        url="https://www.instagram.com/p/C0ffee/", platform="instagram",
        author=Author(id="4401", name="Aigerim S.", handle="@aigerim_s",
                      url="https://www.instagram.com/aigerim_s/"),
        thread_id="C0ffee", parent_id="17890011",
    )
    # Fields the item leaves out stay empty; without a time, it is the time it arrived.
    assert bare == RawMention(source="youscan", external_id="90817264",
                              text="Кселл, спасибо!", published_at=NOW)


async def test_without_an_items_path_the_body_is_the_list_or_one_mention() -> None:
    as_list = await receiver(items=None).receive(SOURCE, signed([ITEM, ITEM]), now=NOW)
    as_one = await receiver(items=None).receive(SOURCE, signed(ITEM), now=NOW)

    assert len(as_list) == 2
    assert [m.external_id for m in as_one] == ["90817263"]


@pytest.mark.parametrize(
    ("time_format", "published", "expected"),
    [
        ("iso", "2026-11-25T09:58:00Z", datetime(2026, 11, 25, 9, 58, tzinfo=UTC)),
        ("iso", "2026-11-25T14:58:00+05:00", datetime(2026, 11, 25, 9, 58, tzinfo=UTC)),
        ("iso", "2026-11-25T09:58:00", datetime(2026, 11, 25, 9, 58, tzinfo=UTC)),
        ("unix", 1795600680, datetime(2026, 11, 25, 9, 58, tzinfo=UTC)),
        ("unix", "1795600680.5", datetime(2026, 11, 25, 9, 58, 0, 500000, tzinfo=UTC)),
        ("unix_ms", 1795600680250, datetime(2026, 11, 25, 9, 58, 0, 250000, tzinfo=UTC)),
        ("%d.%m.%Y %H:%M", "25.11.2026 09:58", datetime(2026, 11, 25, 9, 58, tzinfo=UTC)),
        ("%d.%m.%Y %H:%M %z", "25.11.2026 14:58 +0500",
         datetime(2026, 11, 25, 14, 58, tzinfo=timezone(timedelta(hours=5)))),
    ],
    ids=["iso Z", "iso offset", "iso naive is UTC", "unix", "unix text", "unix_ms",
         "strptime naive is UTC", "strptime %z"],
)
async def test_the_configured_time_format_is_read(
    time_format: str, published: Any, expected: datetime
) -> None:
    body = {"mentions": [{**ITEM, "published": published}]}

    [found] = await receiver(time_format=time_format).receive(SOURCE, signed(body), now=NOW)

    assert found.published_at == expected
    assert found.published_at.utcoffset() is not None


async def test_a_time_not_in_the_format_is_refused_400_naming_the_item() -> None:
    body = {"mentions": [ITEM, {**ITEM, "published": "yesterday"}]}

    refused = await refusal(receiver(), signed(body))

    assert refused.status == 400
    assert str(refused).startswith("[1]: published_at 'yesterday'")


@pytest.mark.parametrize(
    ("time_format", "published", "reason"),
    [
        ("iso", "0001-01-01T00:00:00+05:00",
         "[1]: published_at: 0001-01-01T00:00:00+05:00 is out of range"),
        ("iso", "9999-12-31T23:59:59-05:00",
         "[1]: published_at: 9999-12-31T23:59:59-05:00 is out of range"),
        ("unix", 0, "[1]: published_at: 1970-01-01T00:00:00+00:00 is out of range"),
        ("unix", 10**20, "[1]: published_at '100000000000000000000': "),
        ("unix_ms", "1e300", "[1]: published_at '1e300': "),
    ],
    ids=["year 1", "year 9999", "1970", "unix 10^20", "unix_ms 1e300"],
)
async def test_a_time_outside_2000_to_a_day_ahead_is_refused_400_naming_the_item(
    time_format: str, published: Any, reason: str
) -> None:
    good = {"iso": ITEM["published"], "unix": NOW.timestamp(),
            "unix_ms": NOW.timestamp() * 1000}[time_format]
    body = {"mentions": [{**ITEM, "published": good}, {**ITEM, "published": published}]}

    refused = await refusal(receiver(time_format=time_format), signed(body))

    assert refused.status == 400
    assert str(refused).startswith(reason)


async def test_control_characters_leave_the_fields_and_an_id_of_nothing_else_is_refused(
) -> None:
    [found] = await receiver().receive(SOURCE, signed({"mentions": [
        {**ITEM, "id": "90\x00817", "post": {"id": "C0\x00ffee"}}]}), now=NOW)
    refused = await refusal(receiver(), signed({"mentions": [{**ITEM, "id": "\x00"}]}))

    assert (found.external_id, found.thread_id) == ("90817", "C0ffee")
    assert (refused.status, str(refused)) == (400, "[0]: no external_id at 'id'")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({**ITEM, "id": "x" * 257}, "[1]: external_id: String should have at most 256"),
        ({**ITEM, "source": {"type": "p" * 65}}, "[1]: platform: String should have at most 64"),
        ({**ITEM, "text": "Kcell " * 20_000}, "[1]: text: String should have at most 100000"),
    ],
    ids=["id", "platform", "text"],
)
async def test_an_item_longer_than_post_ingest_takes_is_refused_400_naming_it(
    item: dict[str, Any], reason: str
) -> None:
    refused = await refusal(receiver(), signed({"mentions": [ITEM, item]}))

    assert refused.status == 400
    assert str(refused).startswith(reason)


# --------------------------------------------------------------------------- the signature


async def test_an_hmac_signature_with_the_configured_header_and_prefix_is_taken() -> None:
    raw = json.dumps({"mentions": [ITEM]}).encode()
    pushed = Pushed(query={}, body=raw,
                    headers={"X-Sig": "hmac-sha256 " + hmac_sha256(SECRET, raw)})

    found = await receiver(header="X-Sig", prefix="hmac-sha256 ").receive(SOURCE, pushed,
                                                                          now=NOW)

    assert [m.external_id for m in found] == ["90817263"]


async def test_a_query_token_is_taken_when_the_signature_style_is_token() -> None:
    pushed = Pushed(query={"key": SECRET}, headers={},
                    body=json.dumps({"mentions": [ITEM]}).encode())

    found = await receiver(signature="token", token_param="key").receive(SOURCE, pushed,
                                                                         now=NOW)

    assert [m.external_id for m in found] == ["90817263"]


def _other_secret(raw: bytes) -> Pushed:
    return signed(raw, secret="not-" + SECRET)


def _no_header(raw: bytes) -> Pushed:
    return Pushed(query={}, headers={}, body=raw)


def _no_prefix(raw: bytes) -> Pushed:
    return Pushed(query={}, headers={"X-YouScan-Signature": hmac_sha256(SECRET, raw)}, body=raw)


def _changed_body(raw: bytes) -> Pushed:
    pushed = signed(raw)
    return Pushed(query={}, headers=pushed.headers, body=raw.replace(b"down", b"fine"))


def _token_in_query(raw: bytes) -> Pushed:
    return Pushed(query={"token": SECRET}, headers={}, body=raw)


@pytest.mark.parametrize(
    "make", [_other_secret, _no_header, _no_prefix, _changed_body, _token_in_query],
    ids=["other secret", "no header", "no prefix", "changed body", "a token instead"])
async def test_a_request_without_the_right_signature_is_refused_401(make: Any) -> None:
    refused = await refusal(receiver(), make(json.dumps({"mentions": [ITEM]}).encode()))

    assert refused.status == 401
    assert "X-YouScan-Signature" in str(refused)


@pytest.mark.parametrize("query", [{}, {"token": "not-" + SECRET}, {"key": SECRET}])
async def test_a_request_without_the_right_token_is_refused_401(query: dict[str, str]) -> None:
    pushed = Pushed(query=query, headers={}, body=json.dumps({"mentions": [ITEM]}).encode())

    refused = await refusal(receiver(signature="token"), pushed)

    assert refused.status == 401
    assert "?token=" in str(refused)


async def test_the_signature_is_checked_before_the_body_is_read() -> None:
    pushed = Pushed(query={}, headers={}, body=b"{not json")

    assert (await refusal(receiver(), pushed)).status == 401


# --------------------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ({k: v for k, v in ITEM.items() if k != "text"}, "[1]: no text at 'text'"),
        ({**ITEM, "text": "   "}, "[1]: no text at 'text'"),
        ({**ITEM, "id": {"value": 1}}, "[1]: no external_id at 'id'"),
        ({**ITEM, "id": None}, "[1]: no external_id at 'id'"),
    ],
    ids=["absent", "blank", "an object", "null"],
)
async def test_an_item_without_a_required_field_is_refused_400_naming_index_and_path(
    item: dict[str, Any], where: str
) -> None:
    refused = await refusal(receiver(), signed({"mentions": [ITEM, item]}))

    assert refused.status == 400
    assert str(refused) == where


async def test_an_item_that_is_not_an_object_is_refused_400_naming_it() -> None:
    refused = await refusal(receiver(), signed({"mentions": [ITEM, ITEM, "oops"]}))

    assert (refused.status, str(refused)) == (400, "[2]: expected a JSON object, got str")


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe{}", b"", b"[" * 5000 + b"]" * 5000],
                         ids=["cut", "bytes", "empty", "5000 deep"])
async def test_a_body_that_is_not_json_is_refused_400(body: bytes) -> None:
    refused = await refusal(receiver(), signed(body))

    assert refused.status == 400
    assert "malformed JSON" in str(refused)


@pytest.mark.parametrize(
    ("options", "body", "reason"),
    [
        ({}, {"mentions": "none today"}, "expected a list of mentions, got str"),
        ({}, {"mentions": 3}, "expected a list of mentions, got int"),
        ({"items": None}, "just text", "expected a list of mentions, got str"),
        ({}, {"items": [ITEM]}, "no 'mentions' in the body"),
    ],
    ids=["a string", "a number", "a bare string", "elsewhere"],
)
async def test_a_body_without_a_list_of_mentions_is_refused_400(
    options: dict[str, Any], body: Any, reason: str
) -> None:
    refused = await refusal(receiver(**options), signed(body))

    assert (refused.status, str(refused)) == (400, reason)


async def test_over_max_items_is_refused_413_and_max_items_is_taken() -> None:
    items = [{"id": i, "text": f"Kcell #{i}"} for i in range(MAX_ITEMS + 1)]

    refused = await refusal(receiver(), signed({"mentions": items}))
    taken = await receiver().receive(SOURCE, signed({"mentions": items[:MAX_ITEMS]}), now=NOW)

    assert refused.status == 413
    assert len(taken) == MAX_ITEMS
