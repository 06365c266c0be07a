"""Replies with a picture: checked against the platform's limits before anything is
sent, published as text only (recorded so) by a source that cannot publish pictures,
and recorded as a picture answer."""

from __future__ import annotations

import pytest

from socialcare.bot import cases
from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.errors import DomainError
from socialcare.bot.model import Mention
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import Published
from socialcare.bot.team import Source, Team
from tests.conftest import FakeClock, Storage
from tests.mentions import mention

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class TextOnly:
    """A platform that publishes text alone."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        self.sent.append(text)
        return Published(external_id=f"r{len(self.sent)}")


class WithPictures(TextOnly):
    """A platform that takes PNG pictures up to 1 MB, with captions up to 20 characters."""

    def __init__(self) -> None:
        super().__init__()
        self.pictures: list[bytes] = []

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits:
        return PictureLimits(max_bytes=MB, types=("image/png",), max_caption=20)

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        self.pictures.append(picture.content)
        return await self.publish(source, to, text)


async def _case(storage: Storage, team: Team, clock: FakeClock) -> int:
    [created] = await Pipeline(team, clock=clock).ingest([mention("p1")], uow=storage.uow())
    assert created.case_id is not None
    return created.case_id


@pytest.mark.parametrize(("picture", "text", "key"), [
    (Picture("a.gif", b"GIF89a" + b"\0" * 10), "See", "error.picture_type"),
    (Picture("a.png", b"not a picture"), "See", "error.picture_type"),
    (Picture("a.png", PNG + b"\0" * MB), "See", "error.picture_too_big"),
    (Picture("a.png", PNG), "A caption far too long for it", "error.caption_too_long"),
])
async def test_a_picture_the_platform_would_not_take_is_refused_before_sending(
    storage: Storage, team: Team, clock: FakeClock, picture: Picture, text: str, key: str
) -> None:
    case_id = await _case(storage, team, clock)
    platform = WithPictures()
    with pytest.raises(DomainError) as refused:
        await cases.reply(cases.Reply(case_id, "aigerim", text, picture=picture),
                          uow=storage.uow(), clock=clock, team=team,
                          publishers={"webhook": platform})
    assert refused.value.key == key
    assert platform.sent == [] and platform.pictures == []


async def test_a_source_without_pictures_gets_the_text_and_the_case_records_text_only(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _case(storage, team, clock)
    platform = TextOnly()
    told = await cases.find_pictures(case_id, uow=storage.uow(), team=team,
                                     publishers={"webhook": platform})
    changed = await cases.reply(
        cases.Reply(case_id, "aigerim", "See", picture=Picture("a.png", PNG)),
        uow=storage.uow(), clock=clock, team=team, publishers={"webhook": platform})
    assert told.text_only and told.source == "webhook"
    assert platform.sent == ["See"]
    [event] = changed.events
    assert event.data["form"] == "text" and event.data.get("picture") is None
    async with storage.uow() as uow:
        [stored] = [e for e in await uow.events.for_case(case_id)
                    if e.kind.value == "agent_message"]
    assert stored.data["form"] == "text" and stored.data.get("picture") is None


async def test_a_source_with_pictures_is_found_taking_them(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _case(storage, team, clock)
    found = await cases.find_pictures(case_id, uow=storage.uow(), team=team,
                                      publishers={"webhook": WithPictures()})
    unpublished = await cases.find_pictures(case_id, uow=storage.uow(), team=team,
                                            publishers={})
    assert not found.text_only and found.limits is not None
    assert found.limits.max_bytes == MB
    assert unpublished.text_only


async def test_a_picture_reply_is_published_and_recorded_as_a_picture(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _case(storage, team, clock)
    platform = WithPictures()
    changed = await cases.reply(
        cases.Reply(case_id, "aigerim", "How to", picture=Picture("apn.png", PNG)),
        uow=storage.uow(), clock=clock, team=team, publishers={"webhook": platform})
    assert platform.pictures == [PNG]
    [event] = changed.events
    assert event.data["form"] == "picture" and event.data["picture"] == "apn.png"


class TextOnlyUnder(WithPictures):
    """A platform that takes pictures, but not in reply to one mention (as Meta takes them
    under Facebook comments and not under Instagram ones)."""

    def __init__(self, text_only_under: str) -> None:
        super().__init__()
        self.text_only_under = text_only_under
        self.asked: list[str | None] = []

    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits | None:
        self.asked.append(None if to is None else to.external_id)
        if to is not None and to.external_id == self.text_only_under:
            return None
        return super().picture_limits(source, to)


async def test_whether_a_picture_goes_is_asked_of_the_mention_it_answers(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    case_id = await _case(storage, team, clock)
    platform = TextOnlyUnder("p1")
    found = await cases.find_pictures(case_id, uow=storage.uow(), team=team,
                                      publishers={"webhook": platform})
    changed = await cases.reply(
        cases.Reply(case_id, "aigerim", "See", picture=Picture("a.png", PNG)),
        uow=storage.uow(), clock=clock, team=team, publishers={"webhook": platform})
    assert platform.asked == ["p1", "p1"]
    assert found.text_only
    assert platform.sent == ["See"] and platform.pictures == []
    [event] = changed.events
    assert event.data["form"] == "text" and event.data.get("picture") is None
