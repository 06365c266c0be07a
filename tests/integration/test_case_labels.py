"""Each case's topics and places as rows, kept in step with its events, and counted
the way incident detection will count them: new cases of a topic in a place lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import Place, Topic
from socialcare.bot.understanding import topics as changes
from socialcare.storage.schema import case_places, case_topics
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

TEAM = make_team(
    topics=(Topic(name="internet", title="Mobile internet", keywords=("интернет", "internet")),
            Topic(name="billing", title="Billing", keywords=("деньги", "refund"))),
    places=(Place(name="almaty", title="Almaty", keywords=("Алматы", "Almaty")),
            Place(name="astana", title="Astana", keywords=("Астана", "Astana"))),
)


async def _count(storage: Storage, topic: str, place: str, since: datetime) -> int:
    """New cases of `topic` in `place` published since `since`."""
    query = (select(func.count()).select_from(case_topics.join(
        case_places, case_places.c.case_id == case_topics.c.case_id))
        .where(case_topics.c.topic == topic, case_places.c.place == place,
               case_topics.c.published_at >= since))
    async with storage.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_new_cases_of_a_topic_in_a_place_are_counted_by_time_and_follow_changes(
    storage: Storage, clock: FakeClock
) -> None:
    pipeline = Pipeline(TEAM, clock=clock)
    texts = ["Кселлдің интернеті Алматыда жоқ", "Kcell internet down in Almaty",
             "Kcell, в Астане нет интернета", "Kcell refund please, Almaty"]
    for n, text in enumerate(texts):
        await pipeline.ingest([mention(f"old{n}", text)], uow=storage.uow())
    clock.advance(minutes=30)
    created = []
    for n, text in enumerate(texts):
        [result] = await pipeline.ingest([mention(f"new{n}", text, published_at=clock.now())],
                                         uow=storage.uow())
        created.append(result.case_id)
    since = clock.now() - timedelta(minutes=10)

    before = (await _count(storage, "internet", "almaty", since),
              await _count(storage, "internet", "astana", since),
              await _count(storage, "billing", "almaty", since))
    assert created[3] is not None
    await changes.set_topics(changes.SetTopics(created[3], "aigerim", ("internet",)),
                             uow=storage.uow(), clock=clock, team=TEAM)
    after = (await _count(storage, "internet", "almaty", since),
             await _count(storage, "billing", "almaty", since))

    assert before == (2, 1, 1)
    assert after == (3, 0)


async def test_cases_count_when_their_customers_wrote_and_an_impossible_time_when_found(
    storage: Storage, clock: FakeClock
) -> None:
    pipeline = Pipeline(TEAM, clock=clock)
    text = "Kcell internet down in Almaty"
    now = clock.now()
    found_late = mention("late", text, published_at=now - timedelta(hours=3))
    from_the_future = mention("future", text, published_at=now + timedelta(days=30))
    from_year_one = mention("year-one", text, published_at=datetime(1, 1, 2, tzinfo=UTC))
    just_now = mention("now", text, published_at=now - timedelta(minutes=2))
    for raw in (found_late, from_the_future, from_year_one, just_now):
        await pipeline.ingest([raw], uow=storage.uow())
    async with storage.uow() as uow:
        recent = await uow.incidents.counts(now - timedelta(minutes=15), now + timedelta(
            seconds=1))
        earlier = await uow.incidents.counts(now - timedelta(hours=4), now - timedelta(hours=2))

    # Found now, written three hours ago: it belongs to three hours ago, not to a surge
    # now; a time in the future or in year one cannot be true: it counts when found.
    assert recent[("internet", "almaty")] == 3
    assert earlier[("internet", "almaty")] == 1
