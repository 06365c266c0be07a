"""Replies published through the source, and their echo coming back."""

from __future__ import annotations

from socialcare.bot import cases
from socialcare.bot.model import Mention
from socialcare.bot.pipeline import DropReason, Pipeline
from socialcare.bot.ports import Published
from socialcare.bot.team import Source, Team
from tests.conftest import FakeClock, Storage
from tests.mentions import BRAND_REPLY, mention


class EchoingPlatform:
    """A listening platform so quick that our reply comes back before we record it."""

    def __init__(self, pipeline: Pipeline, storage: Storage) -> None:
        self.pipeline = pipeline
        self.storage = storage
        self.echoes: list[object] = []

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        self.echoes += await self.pipeline.ingest(
            [mention("reply-1", text, author=BRAND_REPLY, thread_id=to.thread_key)],
            uow=self.storage.uow())
        return Published(external_id="reply-1", url="https://example.org/reply-1")


async def test_a_reply_whose_echo_came_first_is_recorded_once_and_later_echoes_are_dropped(
    storage: Storage, team: Team, clock: FakeClock
) -> None:
    pipeline = Pipeline(team, clock=clock)
    [created] = await pipeline.ingest([mention("p1")], uow=storage.uow())
    platform = EchoingPlatform(pipeline, storage)

    replied = await cases.reply(cases.Reply(created.case_id, "aigerim", "Sorry, fixing it"),
                                uow=storage.uow(), clock=clock, team=team,
                                publishers={"webhook": platform})
    [late] = await pipeline.ingest([mention("reply-1", "Sorry, fixing it",
                                            author=BRAND_REPLY, thread_id="p1")],
                                   uow=storage.uow())

    async with storage.uow() as uow:
        stored = await uow.mentions.for_case(created.case_id)
    assert replied.case.first_response_at is not None
    assert [m.external_id for m in stored] == ["p1", "reply-1"]
    assert late.reason is DropReason.DUPLICATE
