"""Brand by source: reviews of the brand's shops and comments under its own posts are
about the brand without naming it; an updated review follows up its case; a review's
stars set its priority."""

from __future__ import annotations

from dataclasses import replace

from socialcare.bot import cases
from socialcare.bot.model import Author, EventKind, Priority, State, Tier
from socialcare.bot.pipeline import DropReason, Outcome, Pipeline
from socialcare.bot.team import Source
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

REVIEWS = Source(name="shops", kind="webhook", platform="google", tier=Tier.EXTRA,
                 brand="activ")
TEAM = make_team(sources=(*make_team().sources, REVIEWS))
SHOPPER = Author(id="r-7", name="Dana")


def review(external_id: str, text: str, *, stars: int | None = 4,
           thread: str | None = None, minutes_ago: float = 0) -> object:
    return replace(mention(external_id, text, source="shops", author=SHOPPER,
                           thread_id=thread, minutes_ago=minutes_ago), rating=stars)


async def test_an_item_of_a_branded_source_is_about_its_brand_without_a_keyword(
    storage: Storage, clock: FakeClock
) -> None:
    pipeline = Pipeline(TEAM, clock=clock)

    results = await pipeline.ingest([
        review("r1", "The shop on Abay street was rude"),
        # Even where the text names another brand, the source's brand holds.
        review("r2", "Worse than Kcell's shop next door"),
        # The same words from an unbranded source name no brand.
        mention("w1", "The shop on Abay street was rude"),
    ], uow=storage.uow())

    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.CREATED, Outcome.DROPPED]
    assert results[2].reason is DropReason.NO_BRAND
    async with storage.uow() as uow:
        made = await uow.cases.get_many({r.case_id for r in results[:2] if r.case_id})
    assert {case.brand for case in made.values()} == {"activ"}


async def test_one_or_two_stars_make_a_review_urgent_three_do_not(
    storage: Storage, clock: FakeClock
) -> None:
    results = await Pipeline(TEAM, clock=clock).ingest(
        [review("one", "Awful", stars=1), review("two", "Bad", stars=2),
         review("three", "So-so", stars=3), review("none", "A note", stars=None)],
        uow=storage.uow())

    async with storage.uow() as uow:
        made = await uow.cases.get_many({r.case_id for r in results if r.case_id})
    priorities = [made[r.case_id].priority for r in results if r.case_id]
    assert priorities == [Priority.URGENT, Priority.URGENT, Priority.NORMAL, Priority.NORMAL]


async def test_an_updated_review_follows_up_its_case_and_reopens_it_once_resolved(
    storage: Storage, clock: FakeClock
) -> None:
    pipeline = Pipeline(TEAM, clock=clock)
    [first] = await pipeline.ingest([review("abc", "Rude staff", stars=2, minutes_ago=30)],
                                    uow=storage.uow())
    assert first.case_id is not None
    for command in (cases.MarkAnswered(first.case_id, "aigerim", text="Sorry, Dana"),
                    cases.Resolve(first.case_id, "aigerim")):
        handler = cases.mark_answered if isinstance(command, cases.MarkAnswered) \
            else cases.resolve
        await handler(command, uow=storage.uow(), clock=clock, team=TEAM)  # type: ignore[arg-type]

    # The reviewer edits the review: a new version of the same review, in its thread.
    [updated] = await pipeline.ingest(
        [review("abc@2026-11-25T09:50:00Z", "Still rude, and no refund", stars=1,
                thread="abc")], uow=storage.uow())

    assert (updated.outcome, updated.case_id, updated.role) == (
        Outcome.JOINED, first.case_id, "customer")
    async with storage.uow() as uow:
        case = await uow.cases.get(first.case_id)
        kinds = [e.kind for e in await uow.events.for_case(first.case_id)]
        texts = [m.text for m in await uow.mentions.for_case(first.case_id)]
    assert case.state is State.REOPENED
    assert kinds[-2:] == [EventKind.CUSTOMER_MESSAGE, EventKind.REOPENED]
    assert texts == ["Rude staff", "Still rude, and no refund"]
