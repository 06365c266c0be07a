"""A pushed source's health on real storage: deliveries side by side add up, and a
change of alert is told once, whichever delivery saw it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from socialcare.bot import collecting
from socialcare.bot.errors import ConcurrentUpdate
from socialcare.bot.model import Tier
from socialcare.bot.sources import Alert
from socialcare.bot.team import Source
from socialcare.storage.database import SqlUnitOfWork
from tests.conftest import FakeClock, Storage
from tests.mentions import mention

PUSHED = Source(name="webhook", kind="webhook", platform="instagram", tier=Tier.MAIN,
                silent_minutes=60)


async def test_deliveries_side_by_side_all_count_and_the_recovery_is_told_once(
    storage: Storage, clock: FakeClock
) -> None:
    first = await collecting.delivered(PUSHED, [mention(0, minutes_ago=1)],
                                       uow=storage.uow, clock=clock)
    clock.advance(minutes=90)
    went_silent = await collecting.check_silence([PUSHED], polled=lambda _: False,
                                                 uow=storage.uow, clock=clock)
    still_silent = await collecting.check_silence([PUSHED], polled=lambda _: False,
                                                  uow=storage.uow, clock=clock)
    # Fifty deliveries at once, over two engines as two processes would have.
    other = storage.new_engine()
    alerts = await asyncio.gather(*(
        collecting.delivered(
            PUSHED, [mention(f"{n}-{i}", published_at=clock.now() - timedelta(seconds=n))
                     for i in range(3)],
            uow=(lambda: SqlUnitOfWork(other)) if n % 2 else storage.uow, clock=clock)
        for n in range(50)
    ))
    async with storage.uow() as uow:
        state = await uow.sources.get(PUSHED.name)

    assert first is None
    assert went_silent == [(PUSHED, (Alert.OK, Alert.SILENT))]
    assert still_silent == []
    assert [a for a in alerts if a is not None] == [(Alert.SILENT, Alert.OK)]
    assert state.alert is Alert.OK
    assert state.items_found == 1 + 150
    assert state.last_item_at == clock.now()  # the newest of all, whichever came last
    assert state.last_success_at == clock.now()


async def test_a_delivery_between_a_read_and_a_save_makes_the_save_try_again(
    storage: Storage, clock: FakeClock
) -> None:
    await collecting.delivered(PUSHED, [mention(1)], uow=storage.uow, clock=clock)
    async with storage.uow() as uow:
        read = await uow.sources.get(PUSHED.name)
    await collecting.delivered(PUSHED, [mention(2)], uow=storage.uow, clock=clock)
    read.note = "an older view of the source"
    async with storage.uow() as uow:
        # Saving it would undo the second delivery's count.
        with pytest.raises(ConcurrentUpdate):
            await uow.sources.save(read)


async def test_a_silence_seen_before_a_delivery_is_not_recorded_after_it(
    storage: Storage, clock: FakeClock
) -> None:
    await collecting.delivered(PUSHED, [mention(1, minutes_ago=1)], uow=storage.uow,
                               clock=clock)
    clock.advance(minutes=90)
    async with storage.uow() as uow:
        seen = await uow.sources.get(PUSHED.name)  # as the silence check reads it
    await collecting.delivered(PUSHED, [mention(2, published_at=clock.now())],
                               uow=storage.uow, clock=clock)
    async with storage.uow() as uow:
        moved = await uow.sources.move_alert(PUSHED.name, was=Alert.OK, to=Alert.SILENT,
                                             version=seen.version)
        await uow.commit()
    async with storage.uow() as uow:
        state = await uow.sources.get(PUSHED.name)

    assert not moved
    assert state.alert is Alert.OK
