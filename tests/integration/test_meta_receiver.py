"""The Meta receiver: Facebook Page and Instagram webhooks in, Graph API replies out.

Deliveries are built by the fake Meta as Meta sends them (its JSON escaping, its
signature) and handed to `receive` as the HTTP handler would; Instagram mentions are
looked up, and replies posted, in the fake Graph API over HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from socialcare.adapters.collectors import meta
from socialcare.adapters.collectors.push import Pushed, Refused
from socialcare.bot.answers.pictures import Picture
from socialcare.bot.model import Author, Mention, RawMention, Tier
from socialcare.bot.pipeline import normalise
from socialcare.bot.ports import PublishFailed
from socialcare.bot.team import Source
from tests.conftest import FakeClock
from tests.fakes.meta import FakeMeta, FbComment, meta_json, sign, sign_sha1

SOURCE = Source(name="meta", kind="meta", platform="facebook", tier=Tier.MAIN)
VERIFY_TOKEN = "verify-me-3f9a"
CHALLENGE = "1158201444"

# shared/samples/facebook_page_feed_comment_webhook.json: a 2016 capture (Graph API v2.8)
# from github.com/Oktasuke/TCCLighting, with the commenter as sender_id/sender_name.
LEGACY_FEED_COMMENT = {
    "entry": [
        {
            "changes": [
                {
                    "field": "feed",
                    "value": {
                        "parent_id": "1142469655832956_1163393020407286",
                        "sender_name": "CTCC",
                        "comment_id": "1163393020407286_1164864096926845",
                        "sender_id": 1142469655832956,
                        "item": "comment",
                        "verb": "add",
                        "created_time": 1478439630,
                        "post_id": "1142469655832956_1163393020407286",
                        "message": "test",
                    },
                }
            ],
            "id": "1142469655832956",
            "time": 1478439630,
        }
    ],
    "object": "page",
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake_meta() -> AsyncIterator[FakeMeta]:
    async with FakeMeta() as fake:
        yield fake


@pytest.fixture
def clock(fake_meta: FakeMeta) -> FakeClock:
    """The test's clock, at the fake's time: Meta stamps what it sends with its own."""
    return FakeClock(fake_meta.now())


def receiver(http: aiohttp.ClientSession, fake: FakeMeta, *,
             page_token: str | None = "page", ig_user: bool = True) -> meta.MetaReceiver:
    """Return a receiver on the fake; `page_token` "page" is the fake's own token."""
    options = meta.Options(
        graph_url=fake.graph_url, app_secret_env="META_APP_SECRET",
        verify_token_env="META_VERIFY_TOKEN",
        page_token_env="META_PAGE_TOKEN" if page_token is not None else None,
        page_id=fake.page_id, ig_user_id=fake.ig_user_id if ig_user else None)
    return meta.MetaReceiver(
        http, options, app_secret=fake.app_secret, verify_token=VERIFY_TOKEN,
        page_token=fake.access_token if page_token == "page" else page_token)


def signed(fake: FakeMeta, body: dict[str, Any] | bytes) -> Pushed:
    """Return a delivery as Meta sends it: its serialisation, signed with the app secret."""
    raw = body if isinstance(body, bytes) else meta_json(body)
    return Pushed(query={}, headers={"X-Hub-Signature-256": sign(raw, fake.app_secret)},
                  body=raw)


def as_mention(raw: RawMention, clock: FakeClock) -> Mention:
    """Return the stored form of a mention, which replies are addressed to."""
    return normalise(raw, clock.now(), default_platform=SOURCE.platform)


# --------------------------------------------------------------------------- the handshake


async def test_the_subscription_check_is_answered_with_its_challenge(
    http: aiohttp.ClientSession, fake_meta: FakeMeta
) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
             "hub.challenge": CHALLENGE}

    assert receiver(http, fake_meta).challenge(query) == CHALLENGE


async def test_a_subscription_check_with_a_wrong_verify_token_is_refused_403(
    http: aiohttp.ClientSession, fake_meta: FakeMeta
) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": CHALLENGE}

    with pytest.raises(Refused) as refused:
        receiver(http, fake_meta).challenge(query)

    assert refused.value.status == 403


@pytest.mark.parametrize(
    "query",
    [
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": CHALLENGE},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": CHALLENGE},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
    ],
    ids=["no mode", "another mode", "no challenge"],
)
async def test_a_check_that_is_not_a_subscribe_with_a_challenge_is_refused_400(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, query: dict[str, str]
) -> None:
    with pytest.raises(Refused) as refused:
        receiver(http, fake_meta).challenge(query)

    assert refused.value.status == 400


# --------------------------------------------------------------------------- the signature


@pytest.mark.parametrize(
    "headers",
    [
        lambda raw, secret: {},
        lambda raw, secret: {"X-Hub-Signature-256": sign(raw, secret + "-wrong")},
        lambda raw, secret: {"X-Hub-Signature-256": sign(raw + b" ", secret)},
        lambda raw, secret: {"X-Hub-Signature-256": sign(raw, secret).removeprefix("sha256=")},
        lambda raw, secret: {"X-Hub-Signature": sign_sha1(raw, secret)},
    ],
    ids=["missing", "wrong secret", "another body", "no sha256= prefix", "sha1 only"],
)
async def test_a_delivery_without_a_good_signature_is_refused_401_before_any_lookup(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock, headers: Any
) -> None:
    theirs = fake_meta.add_ig_media("Haul from @acme", username="jane_doe")
    raw = meta_json(fake_meta.ig_mention_caption_webhook(theirs))
    pushed = Pushed(query={}, headers=headers(raw, fake_meta.app_secret), body=raw)

    with pytest.raises(Refused) as refused:
        await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    assert refused.value.status == 401
    assert "X-Hub-Signature-256" in str(refused.value)
    assert fake_meta.calls == []


async def test_the_signature_is_checked_on_the_bytes_meta_sent_escapes_and_all(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("Где мой возврат? https://acme.kz/refund")
    pushed = signed(fake_meta, fake_meta.fb_comment_webhook(comment))

    [found] = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    assert b"\\u0413" in pushed.body and b"https:\\/\\/acme.kz" in pushed.body
    assert found.text == "Где мой возврат? https://acme.kz/refund"


@pytest.mark.parametrize(
    "body",
    [b"{not json", json.dumps({"object": "user", "entry": []}).encode(), b"[]"],
    ids=["malformed", "another object", "not an object"],
)
async def test_a_signed_body_that_is_no_page_or_instagram_delivery_is_refused_400(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock, body: bytes
) -> None:
    with pytest.raises(Refused) as refused:
        await receiver(http, fake_meta).receive(SOURCE, signed(fake_meta, body), now=clock.now())

    assert refused.value.status == 400


def _feed_with(**value: Any) -> dict[str, Any]:
    """The legacy feed comment with some of its value's fields replaced."""
    [entry] = LEGACY_FEED_COMMENT["entry"]
    [change] = entry["changes"]
    return {**LEGACY_FEED_COMMENT, "entry": [
        {**entry, "changes": [{**change, "value": {**change["value"], **value}}]}]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"object": "page", "entry": 5}, "entry: expected a list, got int"),
        ({"object": "page", "entry": [5]}, "entry[0]: expected an object, got int"),
        ({"object": "page", "entry": [{"changes": "x"}]},
         "entry[0].changes: expected a list, got str"),
        ({"object": "page", "entry": [{"changes": [{"field": "feed", "value": 5}]}]},
         'entry[0].changes[0]: expected an object with a "value" object'),
        (_feed_with(message=5), "entry[0].changes[0].value.message: expected text, got int"),
        (_feed_with(post_id=["p"]), "entry[0].changes[0].value.post_id: expected an id, got list"),
        (_feed_with(created_time=10**20),
         "entry[0].changes[0].value.created_time: 100000000000000000000 is not a time"),
        (_feed_with(created_time=0),
         "entry[0].changes[0].value.created_time: 1970-01-01T00:00:00+00:00 is out of range"),
        (_feed_with(created_time="0001-01-01T00:00:00+0500"),
         "entry[0].changes[0].value.created_time: 0001-01-01T00:00:00+05:00 is out of range"),
        ({"object": "instagram", "entry": [{"changes": [
            {"field": "comments", "value": {"id": "17", "text": {"t": 1}}}]}]},
         "entry[0].changes[0].value.text: expected text, got dict"),
        (b"[" * 5000 + b"]" * 5000, "malformed JSON: nested deeper than 64 levels"),
        (b'{"object": "page", "entry": [{"time": Infinity}]}',
         "malformed JSON: Infinity is not a JSON value"),
    ],
    ids=["entry a number", "entry of numbers", "changes a string", "value a number",
         "message a number", "post id a list", "time 10^20", "time 1970", "time year 1",
         "ig text an object", "5000 deep", "Infinity"],
)
async def test_a_signed_delivery_of_the_wrong_shape_is_refused_400_naming_the_field(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock, body: Any, reason: str
) -> None:
    with pytest.raises(Refused) as refused:
        await receiver(http, fake_meta).receive(SOURCE, signed(fake_meta, body), now=clock.now())

    assert refused.value.status == 400
    assert str(refused.value).startswith(reason)


# --------------------------------------------------------------------------- Facebook Page


async def test_a_page_comment_becomes_a_facebook_mention(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("Where is my refund?", from_name="Jane Doe")
    pushed = signed(fake_meta, fake_meta.fb_comment_webhook(comment))

    found = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    post, jane = comment.post_id, comment.from_id
    assert found == [RawMention(
        source="meta", external_id=comment.id, text="Where is my refund?",
        published_at=comment.created_time, platform="facebook",
        url=f"https://www.facebook.com/{post}?comment_id={comment.id}",
        author=Author(id=jane, name="Jane Doe", url=f"https://www.facebook.com/{jane}"),
        thread_id=f"{post}:{jane}", parent_id=None,
    )]


async def test_a_page_comment_in_the_legacy_sender_shape_becomes_a_mention(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    pushed = signed(fake_meta, LEGACY_FEED_COMMENT)

    [found] = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    post = "1142469655832956_1163393020407286"
    assert found.external_id == "1163393020407286_1164864096926845"
    assert (found.text, found.platform) == ("test", "facebook")
    assert found.author == Author(id="1142469655832956", name="CTCC",
                                  url="https://www.facebook.com/1142469655832956")
    assert found.published_at == datetime(2016, 11, 6, 13, 40, 30, tzinfo=UTC)
    assert found.thread_id == f"{post}:1142469655832956"
    assert found.parent_id is None  # its parent is the post itself


async def test_a_reply_to_a_page_comment_names_the_comment_as_its_parent(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    top = fake_meta.add_fb_comment("Where is my refund?", from_name="Jane Doe")
    reply = fake_meta.add_fb_comment("+1, same here", from_name="John Roe", parent=top)
    pushed = signed(fake_meta, fake_meta.fb_comment_webhook(reply))

    [found] = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    assert found.external_id == reply.id
    assert found.parent_id == top.id
    assert found.thread_id == f"{top.post_id}:{reply.from_id}"


def _edited(fake: FakeMeta, comment: FbComment) -> dict[str, Any]:
    return fake.fb_comment_webhook(comment, verb="edited")


def _removed(fake: FakeMeta, comment: FbComment) -> dict[str, Any]:
    return fake.fb_comment_webhook(comment, verb="remove")


def _reaction(fake: FakeMeta, comment: FbComment) -> dict[str, Any]:
    body = fake.fb_comment_webhook(comment)
    value = body["entry"][0]["changes"][0]["value"]
    value.update(item="reaction", reaction_type="like")
    del value["message"]
    return body


def _another_field(fake: FakeMeta, comment: FbComment) -> dict[str, Any]:
    body = fake.fb_comment_webhook(comment)
    body["entry"][0]["changes"][0]["field"] = "ratings"
    return body


@pytest.mark.parametrize("change", [_edited, _removed, _reaction, _another_field],
                         ids=["edited", "removed", "a reaction", "another field"])
async def test_a_page_change_that_is_no_new_comment_is_ignored(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock, change: Any
) -> None:
    comment = fake_meta.add_fb_comment("Where is my refund?")
    pushed = signed(fake_meta, change(fake_meta, comment))

    assert await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now()) == []


async def test_a_batched_delivery_gives_every_mention_in_it(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comments = [fake_meta.add_fb_comment(f"Refund #{i}?", from_name=f"P{i}") for i in range(3)]
    body = FakeMeta.batch(*(fake_meta.fb_comment_webhook(c) for c in comments))

    found = await receiver(http, fake_meta).receive(SOURCE, signed(fake_meta, body),
                                                    now=clock.now())

    assert [m.external_id for m in found] == [c.id for c in comments]


# --------------------------------------------------------------------------- Instagram


async def test_an_instagram_comment_on_our_media_becomes_a_mention_linking_the_post(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?", username="jane_doe")
    pushed = signed(fake_meta, fake_meta.ig_comments_webhook(comment))

    found = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    profile = "https://www.instagram.com/jane_doe/"
    post = fake_meta.ig_media[comment.media_id]
    assert found == [RawMention(
        source="meta", external_id=comment.id, text="Do you ship to Almaty?",
        published_at=clock.now(),  # the webhook carries no time
        platform="instagram", url=post.permalink,
        author=Author(id=comment.from_id, name="jane_doe", handle="@jane_doe", url=profile),
        thread_id=f"{comment.media_id}:{comment.from_id}", parent_id=None,
    )]
    [lookup] = fake_meta.calls_to(f"GET /{post.id}")
    assert lookup.params == {"fields": "permalink"}


async def test_comments_on_one_post_look_its_permalink_up_once(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    first = fake_meta.add_ig_comment("Do you ship to Almaty?", username="jane_doe")
    second = fake_meta.add_ig_comment("And to Astana?", username="john_roe")
    meta_receiver = receiver(http, fake_meta)

    found = [m for c in (first, second) for m in await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.ig_comments_webhook(c)), now=clock.now())]

    post = fake_meta.ig_media[first.media_id]
    assert [m.url for m in found] == [post.permalink, post.permalink]
    assert len(fake_meta.calls_to(f"GET /{post.id}")) == 1


async def test_an_instagram_comment_links_the_commenter_when_graph_cannot_tell_the_post(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?", username="jane_doe")
    pushed = signed(fake_meta, fake_meta.ig_comments_webhook(comment))
    fake_meta.fail_next_graph(f"/{comment.media_id}", 80002)
    meta_receiver = receiver(http, fake_meta)

    [found] = await meta_receiver.receive(SOURCE, pushed, now=clock.now())
    [tokenless] = await receiver(http, fake_meta, page_token=None).receive(
        SOURCE, pushed, now=clock.now())

    profile = "https://www.instagram.com/jane_doe/"
    assert (found.text, found.url) == ("Do you ship to Almaty?", profile)
    assert tokenless.url == profile
    assert len(fake_meta.calls_to(f"GET /{comment.media_id}")) == 1  # not without a token


async def test_an_instagram_comment_without_text_is_skipped(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?")
    body = fake_meta.ig_comments_webhook(comment)
    del body["entry"][0]["changes"][0]["value"]["text"]
    caplog.set_level(logging.DEBUG, logger=meta.__name__)

    found = await receiver(http, fake_meta).receive(SOURCE, signed(fake_meta, body),
                                                    now=clock.now())

    assert found == []
    assert f"Instagram comment {comment.id} has no text" in caplog.text


async def test_an_instagram_comment_mention_is_looked_up_in_the_graph_api(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    theirs = fake_meta.add_ig_media("Unboxing day", username="jane_doe")
    comment = fake_meta.add_ig_comment("@acme my order never came", media=theirs,
                                       username="john_roe")
    pushed = signed(fake_meta, fake_meta.ig_mention_comment_webhook(comment))

    found = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    assert found == [RawMention(
        source="meta", external_id=f"mention:{theirs.id}:{comment.id}",
        text="@acme my order never came", published_at=comment.timestamp,
        url=theirs.permalink, platform="instagram",
        author=Author(name="john_roe", handle="@john_roe",
                      url="https://www.instagram.com/john_roe/"),
    )]
    [lookup] = fake_meta.calls_to(f"GET /{fake_meta.ig_user_id}")
    assert f"mentioned_comment.comment_id({comment.id})" in lookup.params["fields"]


async def test_an_instagram_caption_mention_is_looked_up_in_the_graph_api(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    theirs = fake_meta.add_ig_media("My haul from @acme, zip broke", username="jane_doe")
    pushed = signed(fake_meta, fake_meta.ig_mention_caption_webhook(theirs))

    found = await receiver(http, fake_meta).receive(SOURCE, pushed, now=clock.now())

    assert found == [RawMention(
        source="meta", external_id=f"mention:{theirs.id}",
        text="My haul from @acme, zip broke", published_at=theirs.timestamp,
        url=theirs.permalink, platform="instagram",
        author=Author(name="jane_doe", handle="@jane_doe",
                      url="https://www.instagram.com/jane_doe/"),
    )]
    [lookup] = fake_meta.calls_to(f"GET /{fake_meta.ig_user_id}")
    assert f"mentioned_media.media_id({theirs.id})" in lookup.params["fields"]


@pytest.mark.parametrize("kind", ["comment", "caption"])
async def test_an_instagram_mention_graph_answers_without_text_is_skipped_not_said_none(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock,
    caplog: pytest.LogCaptureFixture, kind: str,
) -> None:
    theirs = fake_meta.add_ig_media("Haul from @acme", username="jane_doe")
    comment = fake_meta.add_ig_comment("@acme the zip broke", media=theirs)
    if kind == "comment":
        fake_meta.withhold(comment.id, "text")
        body, external_id = (fake_meta.ig_mention_comment_webhook(comment),
                             f"mention:{theirs.id}:{comment.id}")
    else:
        fake_meta.withhold(theirs.id, "caption")
        body, external_id = fake_meta.ig_mention_caption_webhook(theirs), f"mention:{theirs.id}"
    caplog.set_level(logging.INFO, logger=meta.__name__)

    found = await receiver(http, fake_meta).receive(SOURCE, signed(fake_meta, body),
                                                    now=clock.now())

    assert found == []
    assert f"Instagram {external_id} has no text" in caplog.text


@pytest.mark.parametrize(("page_token", "ig_user", "missing"), [
    (None, True, "options.page_token_env"),
    ("page", False, "options.ig_user_id"),
    (None, False, "options.page_token_env and options.ig_user_id"),
], ids=["no page token", "no ig_user_id", "neither"])
async def test_instagram_mentions_that_cannot_be_looked_up_are_dropped_with_one_warning(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock,
    caplog: pytest.LogCaptureFixture, page_token: str | None, ig_user: bool, missing: str,
) -> None:
    theirs = fake_meta.add_ig_media("Haul from @acme", username="jane_doe")
    comment = fake_meta.add_ig_comment("@acme the zip broke", media=theirs)
    body = FakeMeta.batch(fake_meta.ig_mention_caption_webhook(theirs),
                          fake_meta.ig_mention_comment_webhook(comment))
    caplog.set_level(logging.INFO, logger=meta.__name__)

    found = await receiver(http, fake_meta, page_token=page_token, ig_user=ig_user).receive(
        SOURCE, signed(fake_meta, body), now=clock.now())

    assert found == [] and fake_meta.calls == []
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == (
        f"Meta source meta: 2 Instagram mention(s) dropped: looking them up needs {missing}")
    assert fake_meta.access_token not in caplog.text
    assert fake_meta.app_secret not in caplog.text


async def test_a_failed_mention_lookup_refuses_the_delivery_503_for_meta_to_retry(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    theirs = fake_meta.add_ig_media("Haul from @acme", username="jane_doe")
    pushed = signed(fake_meta, fake_meta.ig_mention_caption_webhook(theirs))
    fake_meta.fail_next_graph(f"/{fake_meta.ig_user_id}", 80002)
    meta_receiver = receiver(http, fake_meta)

    with pytest.raises(Refused) as refused:
        await meta_receiver.receive(SOURCE, pushed, now=clock.now())
    again = await meta_receiver.receive(SOURCE, pushed, now=clock.now())

    assert refused.value.status == 503
    assert "too many calls to this Instagram account" in str(refused.value)
    assert [m.external_id for m in again] == [f"mention:{theirs.id}"]


# --------------------------------------------------------------------------- replies


async def test_a_reply_to_a_page_comment_is_posted_under_it(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("Where is my refund?")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.fb_comment_webhook(comment)), now=clock.now())

    published = await meta_receiver.publish(SOURCE, as_mention(raw, clock), "On it, Jane.")

    [reply] = fake_meta.replies
    assert (reply.kind, reply.target_id, reply.message) == (
        "facebook_comment", comment.id, "On it, Jane.")
    assert published.external_id == reply.id
    assert published.url == raw.url
    assert fake_meta.fb_comments[reply.id].from_id == fake_meta.page_id


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


async def test_a_picture_reply_to_a_page_comment_uploads_the_photo_then_attaches_it(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("How do I set up the internet?")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.fb_comment_webhook(comment)), now=clock.now())
    to = as_mention(raw, clock)

    limits = meta_receiver.picture_limits(SOURCE, to)
    published = await meta_receiver.publish_picture(SOURCE, to, "Four steps, see the picture.",
                                                    Picture("apn.png", PNG))

    assert limits is not None and "image/png" in limits.types
    [photo] = fake_meta.photos.values()
    assert photo.data == PNG and photo.content_type == "image/png"
    assert photo.published is False  # uploaded for the comment, not posted to the feed
    [reply] = fake_meta.replies
    assert (reply.kind, reply.target_id, reply.message) == (
        "facebook_comment", comment.id, "Four steps, see the picture.")
    assert reply.photo == photo
    assert published.external_id == reply.id
    [upload] = fake_meta.calls_to(f"POST /{fake_meta.page_id}/photos")
    [attach] = fake_meta.calls_to(f"POST /{comment.id}/comments")
    assert upload.status == 200 and attach.status == 200
    assert attach.params["attachment_id"] == photo.id


async def test_instagram_comment_replies_take_text_only_and_facebook_needs_the_page_id(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.ig_comments_webhook(comment)), now=clock.now())
    no_page = meta.MetaReceiver(
        http, meta.Options(graph_url=fake_meta.graph_url, app_secret_env="A",
                           verify_token_env="V", page_token_env="P"),
        app_secret=fake_meta.app_secret, verify_token=VERIFY_TOKEN,
        page_token=fake_meta.access_token)

    assert meta_receiver.picture_limits(SOURCE, as_mention(raw, clock)) is None
    assert receiver(http, fake_meta, page_token=None).picture_limits(SOURCE) is None
    assert no_page.picture_limits(SOURCE) is None
    with pytest.raises(PublishFailed):
        await meta_receiver.publish_picture(SOURCE, as_mention(raw, clock), "Yes",
                                            Picture("a.png", PNG))
    assert fake_meta.replies == [] and fake_meta.photos == {}


async def test_the_fake_graph_refuses_an_attachment_on_instagram_replies(
    http: aiohttp.ClientSession, fake_meta: FakeMeta
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?")
    async with http.post(f"{fake_meta.graph_url}/{comment.id}/replies", data={
            "message": "Yes", "attachment_url": "https://example.org/a.png",
            "access_token": fake_meta.access_token}) as answer:
        body = await answer.json()
    assert answer.status == 400 and body["error"]["code"] == 100
    assert fake_meta.replies == []


async def test_a_reply_to_an_instagram_comment_goes_to_its_replies(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_ig_comment("Do you ship to Almaty?")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.ig_comments_webhook(comment)), now=clock.now())

    published = await meta_receiver.publish(SOURCE, as_mention(raw, clock), "Yes, in 3 days!")

    [reply] = fake_meta.replies
    assert (reply.kind, reply.target_id, reply.message) == (
        "instagram_reply", comment.id, "Yes, in 3 days!")
    assert published.external_id == reply.id
    assert fake_meta.calls_to(f"POST /{comment.id}/replies")[0].status == 200


async def test_a_reply_to_an_instagram_comment_mention_goes_through_the_mentions_edge(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    theirs = fake_meta.add_ig_media("Unboxing day", username="jane_doe")
    comment = fake_meta.add_ig_comment("@acme the zip broke", media=theirs)
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.ig_mention_comment_webhook(comment)),
        now=clock.now())

    published = await meta_receiver.publish(SOURCE, as_mention(raw, clock), "So sorry! DM us?")

    [call] = fake_meta.calls_to(f"POST /{fake_meta.ig_user_id}/mentions")
    assert call.params == {"media_id": theirs.id, "comment_id": comment.id,
                           "message": "So sorry! DM us?"}
    [reply] = fake_meta.replies
    assert (reply.kind, reply.target_id) == ("instagram_mention", comment.id)
    assert published.external_id == reply.id


async def test_a_reply_to_an_instagram_caption_mention_names_only_the_media(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    theirs = fake_meta.add_ig_media("My haul from @acme", username="jane_doe")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.ig_mention_caption_webhook(theirs)),
        now=clock.now())

    published = await meta_receiver.publish(SOURCE, as_mention(raw, clock), "Thanks!")

    [call] = fake_meta.calls_to(f"POST /{fake_meta.ig_user_id}/mentions")
    assert call.params == {"media_id": theirs.id, "message": "Thanks!"}
    [reply] = fake_meta.replies
    assert (reply.kind, reply.target_id) == ("instagram_mention", theirs.id)
    assert published.external_id == reply.id


async def test_a_reply_graph_refuses_fails_with_graph_reason(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("Where is my refund?")
    meta_receiver = receiver(http, fake_meta)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.fb_comment_webhook(comment)), now=clock.now())
    fake_meta.fail_next_graph(f"/{comment.id}/comments", 80001)

    with pytest.raises(PublishFailed) as failure:
        await meta_receiver.publish(SOURCE, as_mention(raw, clock), "On it.")

    assert "too many calls to this Page account" in str(failure.value)
    assert fake_meta.replies == []


async def test_without_a_page_token_replies_fail_before_asking_graph(
    http: aiohttp.ClientSession, fake_meta: FakeMeta, clock: FakeClock
) -> None:
    comment = fake_meta.add_fb_comment("Where is my refund?")
    meta_receiver = receiver(http, fake_meta, page_token=None)
    [raw] = await meta_receiver.receive(
        SOURCE, signed(fake_meta, fake_meta.fb_comment_webhook(comment)), now=clock.now())

    with pytest.raises(PublishFailed, match="page_token_env"):
        await meta_receiver.publish(SOURCE, as_mention(raw, clock), "On it.")

    assert not meta_receiver.can_publish
    assert fake_meta.calls == [] and fake_meta.replies == []
