"""The JSON mention format: what is accepted, and what a bad item is told."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcare.adapters.collectors.mention_json import BadMentions, parse_body, parse_lines

SOURCES = {"webhook", "forums"}
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
GOOD = {
    "source": "webhook",
    "external_id": 1234567890,
    "text": "Kcell, why is there no 4G in Almaty again?",
    "published_at": "2026-11-25T10:00:00+05:00",
    "url": "https://example.org/post/1234567890",
    "platform": "instagram",
    "author": {"id": 42, "name": "Aigerim", "handle": "@aigerim"},
    "thread_id": "1234567000",
}


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_one_mention_or_a_list_is_accepted_and_numeric_ids_become_text() -> None:
    [one] = parse_body(json.dumps(GOOD).encode(), sources=SOURCES, now=NOW)
    many = parse_body(json.dumps([GOOD, GOOD]).encode(), sources=SOURCES, now=NOW)

    assert one.external_id == "1234567890"
    assert one.author.id == "42"
    assert one.published_at.utcoffset().total_seconds() == 5 * 3600
    assert len(many) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b"[]", "an empty list"),
        (b'"text"', "expected a JSON object"),
        (json.dumps({**GOOD, "published_at": "2026-11-25T10:00:00"}).encode(),
         "published_at: Input should have timezone info"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "text"}).encode(),
         "text: Field required"),
        (json.dumps({**GOOD, "text": ["a"]}).encode(), "text: Input should be a valid string"),
        (json.dumps([GOOD, {**GOOD, "source": "myspace"}]).encode(),
         "[1].source: unknown source 'myspace' (known: forums, webhook)"),
        (json.dumps({**GOOD, "publishedAt": "x"}).encode(), "publishedAt: Extra inputs"),
        (json.dumps({**GOOD, "external_id": ""}).encode(), "external_id: String should have"),
        (b"\xff\xfe", "malformed JSON: not UTF-8 text"),
        (b"[" * 5000 + b"]" * 5000, "malformed JSON: nested deeper than 64 levels"),
        (json.dumps({**GOOD, "author": {"id": _nested(70)}}).encode(),
         "nested deeper than 64 levels"),
        (b'{"external_id": NaN}', "malformed JSON: NaN is not a JSON value"),
        (b'[{"external_id": ' + b"9" * 5000 + b"}]", "malformed JSON: Exceeds the limit"),
        (json.dumps([GOOD, {**GOOD, "published_at": "0001-01-01T00:00:00+05:00"}]).encode(),
         "[1].published_at: 0001-01-01T00:00:00+05:00 is out of range"),
        (json.dumps({**GOOD, "published_at": "9999-12-31T23:59:59-05:00"}).encode(),
         "published_at: 9999-12-31T23:59:59-05:00 is out of range"),
        (json.dumps({**GOOD, "published_at": "1999-12-31T23:59:59+00:00"}).encode(),
         "published_at: 1999-12-31T23:59:59+00:00 is out of range"),
        (json.dumps({**GOOD, "published_at": "2026-11-26T07:00:00+00:00"}).encode(),
         "published_at: 2026-11-26T07:00:00+00:00 is out of range"),
        (json.dumps({**GOOD, "external_id": "\x00\x07 "}).encode(),
         "external_id: String should have at least 1 character"),
        (json.dumps({**GOOD, "platform": "İ" * 64}).encode(),  # 128 letters lowercased
         "platform: String should have at most 64 characters"),
    ],
)
def test_a_bad_body_is_refused_with_the_field_and_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadMentions) as error:
        parse_body(body, sources=SOURCES, now=NOW)
    assert reason in str(error.value)


def test_json_lines_report_every_bad_line_by_number() -> None:
    lines = [json.dumps(GOOD), "", "{oops", json.dumps({**GOOD, "source": "nope"})]

    mentions, problems = parse_lines(lines, sources=SOURCES, now=NOW)

    assert len(mentions) == 1
    assert problems[0].startswith("line 3: malformed JSON")
    assert problems[1].startswith("line 4: source: unknown source 'nope'")


def test_a_reviews_rating_of_one_to_five_stars_is_taken() -> None:
    [review] = parse_body(json.dumps({**GOOD, "rating": 2}).encode(), sources=SOURCES, now=NOW)
    [plain] = parse_body(json.dumps(GOOD).encode(), sources=SOURCES, now=NOW)

    assert (review.rating, plain.rating) == (2, None)


@pytest.mark.parametrize("rating", [0, 6, -1, "5", 4.5, True, [5], {"stars": 5}, 10**30])
def test_a_rating_that_is_not_one_to_five_stars_is_refused_naming_it(rating: object) -> None:
    with pytest.raises(BadMentions, match="rating"):
        parse_body(json.dumps({**GOOD, "rating": rating}).encode(), sources=SOURCES, now=NOW)


def test_ids_lose_their_control_characters_and_times_up_to_a_day_ahead_are_taken() -> None:
    [one] = parse_body(json.dumps({
        **GOOD, "external_id": "a\x00b", "thread_id": "t\x001",
        "published_at": "2026-11-26T05:59:00+00:00",
    }).encode(), sources=SOURCES, now=NOW)

    assert (one.external_id, one.thread_id) == ("ab", "t1")
