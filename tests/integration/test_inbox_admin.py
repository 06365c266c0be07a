"""The admin's dead-letter commands: list them with their reasons and tries, store one
again after a fix, drop one for good."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from socialcare.bot.team import Team
from socialcare.handlers import inbox_admin
from socialcare.storage.dead_letters import DeadLetters
from socialcare.storage.schema import cases, inbox_dead_letters
from tests.conftest import FakeClock, Storage
from tests.integration.test_ingest_queue import _deps, _mention


async def test_an_admin_lists_retries_and_drops_dead_letters(
    storage: Storage, team: Team, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    deps = _deps(storage, team, clock)
    assert deps.queue is not None
    published = (clock.now() - timedelta(minutes=3)).isoformat()
    async with storage.engine.begin() as conn:
        await conn.execute(insert(inbox_dead_letters), [
            {"id": 41, "source": "webhook", "queued_at": clock.now(), "tries": 3,
             "set_aside_at": clock.now(), "reason": "cannot be stored: IntegrityError: a bug",
             "mention": {"source": "webhook", "external_id": "m41",
                         "text": "Kcell, no 4G in Almaty", "published_at": published,
                         "author": {"handle": "@aigerim"}}},
            {"id": 42, "source": "webhook", "queued_at": clock.now(), "tries": 3,
             "set_aside_at": clock.now(), "reason": "cannot be read: KeyError: 'external_id'",
             "mention": {"source": "webhook", "shape": "from a newer version"}},
        ])
    # And a mention kept for a source this config does not know.
    await deps.queue.put([_mention(7, source="vk2")], now=clock.now())
    await deps.queue.done(await deps.queue.take("w", count=5, block_ms=10, claim_idle_ms=0),
                          unknown=[1], now=clock.now())
    listed, stored, still_bad, dropped, empty = (io.StringIO() for _ in range(5))

    codes = [await inbox_admin.list_letters(deps, listed),
             await inbox_admin.retry(deps, 41, stored),
             await inbox_admin.retry(deps, 42, still_bad)]
    tries = (await DeadLetters(storage.engine).get(42))
    codes += [await inbox_admin.drop(deps, 42, dropped),
              await inbox_admin.drop(deps, 42, dropped),
              await inbox_admin.list_letters(deps, empty)]
    async with storage.engine.connect() as conn:
        made = (await conn.execute(select(cases.c.id, cases.c.brand))).all()

    assert codes == [0, 0, 1, 0, 2, 0]
    lines = listed.getvalue().splitlines()
    assert lines[0].split() == ["id", "source", "external", "id", "tries", "set", "aside",
                                "reason"]
    assert lines[1].split()[:4] == ["41", "webhook", "m41", "3"]
    assert "IntegrityError: a bug" in lines[1]
    assert lines[2].split()[:4] == ["42", "webhook", "-", "3"]
    assert "(2 dead letter(s)" in lines[3]
    assert "1 queued mention(s) of source 'vk2' wait for a worker" in lines[4]
    assert "dead letter 41 (webhook m41): stored, case #1" in stored.getvalue()
    assert made == [(1, "Kcell")]
    errors = capsys.readouterr().err
    assert "dead letter 42 still cannot be stored (KeyError" in errors
    assert tries is not None and tries.tries == 4
    assert "dead letter 42 (webhook (unreadable)) dropped" in dropped.getvalue()
    assert "no dead letter 42" in errors
    assert empty.getvalue().splitlines()[0] == "no dead letters"
