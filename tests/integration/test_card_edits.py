"""Card edits are claimed: of workers looking at one card at once, one edits it, and no
edit from an older reading of the case lands after a newer one."""

from __future__ import annotations

from datetime import timedelta

from socialcare.bot import cases
from socialcare.bot.dispatcher import POST_STALE
from socialcare.bot.pipeline import Pipeline
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

TEAM = make_team()


async def _posted_card(storage: Storage, clock: FakeClock):  # type: ignore[no-untyped-def]
    [result] = await Pipeline(TEAM, clock=clock).ingest(
        [mention("m1", "Kcell, no 4G", published_at=clock.now())], uow=storage.uow())
    async with storage.uow() as uow:
        card = (await uow.cards.for_case(result.case_id))[0]
        assert await uow.cards.begin_post(card, now=clock.now(), stale=clock.now()) == 0
        await uow.cards.posted(card, message_id="1700000000.000100", at=clock.now())
        await uow.commit()
        return result.case_id, (await uow.cards.for_case(result.case_id))[0]


async def test_one_worker_at_a_time_edits_a_card(storage: Storage, clock: FakeClock) -> None:
    _, card = await _posted_card(storage, clock)
    now = clock.now()
    async with storage.uow() as uow:
        first = await uow.cards.begin_edit(card, now=now, stale=now - POST_STALE)
        second = await uow.cards.begin_edit(card, now=now, stale=now - POST_STALE)
        await uow.cards.end_edit(card, began=now - timedelta(seconds=1))  # not its claim
        third = await uow.cards.begin_edit(card, now=now, stale=now - POST_STALE)
        await uow.cards.end_edit(card, began=now)
        after = await uow.cards.begin_edit(card, now=now, stale=now - POST_STALE)
        await uow.commit()
    later = now + POST_STALE + timedelta(seconds=1)  # a claim whose worker died
    async with storage.uow() as uow:
        taken_over = await uow.cards.begin_edit(card, now=later, stale=later - POST_STALE)
        await uow.commit()

    assert (first, second, third, after, taken_over) == (True, False, False, True, True)


async def test_no_edit_from_a_reading_older_than_the_case(
    storage: Storage, clock: FakeClock
) -> None:
    case_id, read_before = await _posted_card(storage, clock)
    await cases.claim(cases.Claim(case_id, "aigerim"), uow=storage.uow(), clock=clock,
                      team=TEAM)
    now = clock.now()
    async with storage.uow() as uow:
        stale = await uow.cards.begin_edit(read_before, now=now, stale=now - POST_STALE)
        read_after = (await uow.cards.for_case(case_id))[0]
        fresh = await uow.cards.begin_edit(read_after, now=now, stale=now - POST_STALE)
        await uow.commit()

    assert read_after.change_seq > read_before.change_seq
    assert (stale, fresh) == (False, True)


async def test_a_post_put_off_for_want_of_a_slot_leaves_no_attempt_behind(
    storage: Storage, clock: FakeClock
) -> None:
    [result] = await Pipeline(TEAM, clock=clock).ingest(
        [mention("m2", "Kcell, no 4G in Astana", published_at=clock.now())], uow=storage.uow())
    now = clock.now()
    async with storage.uow() as uow:
        card = (await uow.cards.for_case(result.case_id))[0]
        assert await uow.cards.begin_post(card, now=now, stale=now - POST_STALE) == 0
        # Meanwhile another worker may not post it: the attempt is on.
        assert await uow.cards.begin_post(card, now=now, stale=now - POST_STALE) is None
        await uow.cards.post_put_off(card, began=now)
        await uow.commit()
    async with storage.uow() as uow:
        after = (await uow.cards.for_case(result.case_id))[0]
        # The next round posts it at once, as a first attempt: no look for a copy first.
        again = await uow.cards.begin_post(after, now=now, stale=now - POST_STALE)
        await uow.commit()

    assert (after.post_attempts, after.posting_since, after.unsure_posts) == (0, None, 0)
    assert again == 0
