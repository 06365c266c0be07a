"""The JSON mention format: what is accepted, and what a bad item is told."""

from __future__ import annotations

import json

import pytest

from socialcare.adapters.collectors.mention_json import BadMentions, parse_body, parse_lines

SOURCES = {"webhook", "forums"}
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


def test_one_mention_or_a_list_is_accepted_and_numeric_ids_become_text() -> None:
    [one] = parse_body(json.dumps(GOOD).encode(), sources=SOURCES)
    many = parse_body(json.dumps([GOOD, GOOD]).encode(), sources=SOURCES)

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
        (b"\xff\xfe", "malformed JSON"),
    ],
)
def test_a_bad_body_is_refused_with_the_field_and_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadMentions) as error:
        parse_body(body, sources=SOURCES)
    assert reason in str(error.value)


def test_json_lines_report_every_bad_line_by_number() -> None:
    lines = [json.dumps(GOOD), "", "{oops", json.dumps({**GOOD, "source": "nope"})]

    mentions, problems = parse_lines(lines, sources=SOURCES)

    assert len(mentions) == 1
    assert problems[0].startswith("line 3: malformed JSON")
    assert problems[1].startswith("line 4: source: unknown source 'nope'")


def test_a_reviews_rating_of_one_to_five_stars_is_taken() -> None:
    [review] = parse_body(json.dumps({**GOOD, "rating": 2}).encode(), sources=SOURCES)
    [plain] = parse_body(json.dumps(GOOD).encode(), sources=SOURCES)

    assert (review.rating, plain.rating) == (2, None)


@pytest.mark.parametrize("rating", [0, 6, -1, "5", 4.5, True, [5], {"stars": 5}, 10**30])
def test_a_rating_that_is_not_one_to_five_stars_is_refused_naming_it(rating: object) -> None:
    with pytest.raises(BadMentions, match="rating"):
        parse_body(json.dumps({**GOOD, "rating": rating}).encode(), sources=SOURCES)
