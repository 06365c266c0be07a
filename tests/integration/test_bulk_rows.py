"""Many rows in one statement (`socialcare.storage.bulk`): each new case gets its own id,
lookups by many ids find exactly the rows asked for, and cases' cards put out of step
together each take their own case's deadline, on both back ends."""

from __future__ import annotations

from datetime import timedelta

from socialcare.bot.model import Author, Card, Case, Mention, Priority, Tier
from tests.conftest import T0, Storage

COUNT = 1_200  # over SQLite's IN-list chunk (500) and over one page of 1,000 rows


def _case(n: int) -> Case:
    published = T0 + timedelta(seconds=n)
    return Case(brand="Kcell", source="webhook", platform="instagram", tier=Tier.MAIN,
                priority=Priority.HIGH, thread_key=f"t{n}", published_at=published,
                collected_at=published, response_due_at=published + timedelta(minutes=15))


def _mention(case: Case, n: int) -> Mention:
    assert case.id is not None
    return Mention(source="webhook", external_id=f"m{n}", platform="instagram",
                   text=f"Kcell {n}", published_at=case.published_at,
                   collected_at=case.collected_at, thread_key=case.thread_key,
                   case_id=case.id, author=Author(id=str(n)))


def _ids(cases: list[Case]) -> list[int]:
    return [case.id for case in cases if case.id is not None]


async def test_cases_added_together_each_get_the_id_of_their_own_row(storage: Storage) -> None:
    new = [_case(n) for n in range(COUNT)]
    async with storage.uow() as uow:
        await uow.cases.add(new)
        await uow.commit()

    async with storage.uow() as uow:
        stored = await uow.cases.get_many(_ids(new))
    assert len({case.id for case in new}) == COUNT
    assert all(stored[case.id].thread_key == case.thread_key for case in new
               if case.id is not None)


async def test_mentions_added_together_are_found_by_their_ids_and_threads(
    storage: Storage,
) -> None:
    cases = [_case(n) for n in range(COUNT)]
    async with storage.uow() as uow:
        await uow.cases.add(cases)
        await uow.mentions.add([_mention(case, n) for n, case in enumerate(cases)])
        await uow.commit()

    wanted = {f"m{n}" for n in range(0, COUNT, 2)} | {"m-unknown"}
    async with storage.uow() as uow:
        seen = await uow.mentions.existing({("webhook", key) for key in wanted})
        threads = await uow.mentions.threads("webhook", {"t7", "m9", "t-unknown"})
    assert seen == {("webhook", f"m{n}") for n in range(0, COUNT, 2)}
    assert threads == {"t7": (cases[7].id, "t7"), "m9": (cases[9].id, "t9")}


async def test_cards_put_out_of_step_together_each_take_their_own_cases_deadline(
    storage: Storage,
) -> None:
    cases = [_case(n) for n in range(COUNT)]
    async with storage.uow() as uow:
        await uow.cases.add(cases)
        await uow.cards.add([Card(case_id=case.id, messenger=messenger, channel="C1",
                                  due_at=T0 + timedelta(days=1), rank=2)
                             for case in cases for messenger in ("slack", "telegram")])
        await uow.commit()
    async with storage.uow() as uow:
        cards = await uow.cards.for_cases(_ids(cases))
        await uow.cards.posted(cards[cases[0].id or 0][0], message_id="1.0", at=T0)
        await uow.commit()
    changed = cases[:-1]  # the last case is left as it was
    for n, case in enumerate(changed):
        case.response_due_at = T0 + timedelta(hours=1, seconds=n)
    at = T0 + timedelta(minutes=5)

    async with storage.uow() as uow:
        await uow.cards.mark_changed(list(reversed(changed)), at=at)
        await uow.commit()

    async with storage.uow() as uow:
        after = await uow.cards.for_cases(_ids(cases))
    for n, case in enumerate(changed):
        assert case.id is not None
        for card in after[case.id]:
            posted = n == 0 and card.messenger == "slack"
            assert (card.deadline, card.due_at, card.change_seq, card.rank) == (
                case.response_due_at, at, 2, 1 if posted else 0), (n, card)
    last = cases[-1]
    assert last.id is not None
    assert {(c.deadline, c.due_at, c.change_seq, c.rank) for c in after[last.id]} == {
        (None, T0 + timedelta(days=1), 1, 2)}
