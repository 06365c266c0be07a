"""Incidents through the real POST /ingest and the scheduler's incident check, with the
shipped config: a replayed outage among a normal day opens one incident, links its
cases, pings the leads once and raises one critical escalation; a normal day opens
none, with and without two weeks of history; two schedulers open one."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from socialcare.adapters.collectors.signature import sign
from socialcare.bot import incidents as incident_service
from socialcare.bot.escalations import Category
from socialcare.console import access
from socialcare.deps import Deps
from socialcare.handlers import scheduler
from socialcare.main import runtime
from socialcare.settings import Settings
from socialcare.storage.database import SqlUnitOfWork
from socialcare.storage.schema import escalations, incident_cases, incidents, notices
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url
from tests.corpus.outage import OUTAGE_SIZE, Slot, normal_day, outage
from tests.e2e.conftest import SECRET
from tests.e2e.test_console import PASSWORD, _next_board, browser

# Wednesday 25 November 2026 in Almaty (UTC+5): its midnight, and the outage at 14:00.
DAY = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
OUTAGE_AT = DAY + timedelta(hours=14)
MIN_CASES = 20  # config.example.toml's [incidents] min_cases


async def _ingest(http: TestClient, mentions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = json.dumps(mentions).encode()
    response = await http.post("/ingest", data=body, headers={
        "X-Signature": sign(body, SECRET), "Content-Type": "application/json"})
    assert response.status == 200, await response.text()
    return list((await response.json())["results"])


async def _seed_history(http: TestClient, clock: FakeClock, days: int = 14) -> None:
    """Ingest `days` normal days before DAY, an hour's mentions at a time."""
    for d in range(days, 0, -1):
        hour: list[dict[str, Any]] = []
        for slot in normal_day(DAY - timedelta(days=d), tag=f"h{d}"):
            hour += slot.mentions
            if slot.at.minute == 0 and hour:
                clock.current = slot.at
                await _ingest(http, hour)
                hour = []


def _merged(*streams: Iterable[Slot]) -> list[Slot]:
    return sorted((s for stream in streams for s in stream), key=lambda s: s.at)


async def _replay(http: TestClient, deps: Deps, clock: FakeClock, slots: list[Slot],
                  ) -> dict[str, int]:
    """Ingest each slot at its time and run the scheduler's incident check after it, as
    the scheduler does every half minute; return each created case by mention id."""
    created: dict[str, int] = {}
    for slot in slots:
        clock.current = slot.at
        if slot.mentions:
            results = await _ingest(http, slot.mentions)
            for sent, result in zip(slot.mentions, results, strict=True):
                if result["outcome"] == "created":
                    created[sent["external_id"]] = result["case_id"]
        await scheduler.watch_incidents(deps)
    return created


async def _count(deps: Deps, query: Any) -> int:
    async with deps.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_a_replayed_outage_opens_one_incident_after_two_weeks_of_history(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await _seed_history(http, clock)
    day = _merged(normal_day(DAY, tag="d"), outage(OUTAGE_AT))
    created = await _replay(http, app_deps, clock, day)

    outage_cases = {case for mid, case in created.items() if mid.startswith("o-")}
    normal_cases = {case for mid, case in created.items() if not mid.startswith("o-")}
    assert len(outage_cases) == OUTAGE_SIZE
    async with app_deps.engine.connect() as conn:
        opened = (await conn.execute(select(incidents))).all()
        linked = set((await conn.execute(select(incident_cases.c.case_id))).scalars())
        raised = (await conn.execute(select(escalations))).all()
        pinged = (await conn.execute(
            select(notices.c.recipient).where(notices.c.key == "notice.incident"))).all()
    assert len(opened) == 1
    incident = opened[0]
    assert (incident.topic, incident.place, incident.state) == ("internet", "almaty", "open")
    assert len(outage_cases & linked) >= 0.95 * len(outage_cases)
    assert len(normal_cases & linked) < 0.05 * len(normal_cases)
    # Within 3 minutes of the outage's min_cases-th mention (ingested a minute apart).
    nth = sorted(outage_cases)[MIN_CASES - 1]
    nth_at = next(s.at for s in day if any(created.get(m["external_id"]) == nth
                                           for m in s.mentions))
    assert timedelta(0) <= incident.detected_at - nth_at <= timedelta(minutes=3)
    # The usual level came from the history: the same hour of the past two weeks.
    assert incident.explanation["usual"] is not None
    # The lead on duty (Saule, in Slack and Telegram) is told once per messenger.
    assert sorted(r for (r,) in pinged) == ["100000003", "U0LEAD0001"]
    critical = [e for e in raised if e.category == Category.CRITICAL.value]
    assert len(critical) == 1 and len(raised) == 1
    assert (critical[0].raised_by, critical[0].director, incident.escalation_id) == (
        "system", "nurlan", critical[0].id)
    assert "Mobile internet" in critical[0].problem and "Almaty" in critical[0].problem


async def test_a_normal_day_opens_no_incident_without_history(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await _replay(http, app_deps, clock, list(normal_day(DAY, tag="d")))

    assert await _count(app_deps, select(func.count()).select_from(incidents)) == 0


async def test_a_normal_day_opens_no_incident_after_two_weeks_of_history(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await _seed_history(http, clock)
    await _replay(http, app_deps, clock, list(normal_day(DAY, tag="d")))

    assert await _count(app_deps, select(func.count()).select_from(incidents)) == 0


async def test_without_history_min_cases_alone_decides(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    created = await _replay(http, app_deps, clock, list(outage(OUTAGE_AT)))

    async with app_deps.engine.connect() as conn:
        opened = (await conn.execute(select(incidents))).all()
        linked = set((await conn.execute(select(incident_cases.c.case_id))).scalars())
    assert len(opened) == 1 and opened[0].explanation["usual"] is None
    assert linked == set(created.values())


async def test_two_schedulers_open_one_incident(
    http: TestClient, app_deps: Deps, clock: FakeClock, tmp_path: Path
) -> None:
    for slot in outage(OUTAGE_AT, minutes_per_slot=3):
        clock.current = slot.at
        await _ingest(http, slot.mentions)
    settings = Settings(database_url=database_url(tmp_path), redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml",
                        ingest_webhook_secret=SECRET)
    async with runtime(settings, clock=clock) as other:
        opened = await asyncio.gather(*(
            scheduler.watch_incidents(deps) for deps in [app_deps, other.deps] * 3))

    assert sum(len(o) for o in opened) == 1
    assert await _count(app_deps, select(func.count()).select_from(incidents)) == 1
    assert await _count(app_deps, select(func.count()).select_from(escalations)) == 1


class _StopsAtCommit(SqlUnitOfWork):
    """A unit of work whose `nth` commit (counted over every transaction it runs) meets
    the process's stop instead."""

    def __init__(self, engine: AsyncEngine, nth: int) -> None:
        super().__init__(engine)
        self._left = nth

    async def commit(self) -> None:
        self._left -= 1
        if self._left == 0:
            raise asyncio.CancelledError
        await super().commit()


async def test_a_surge_is_linked_slice_by_slice_and_a_stop_half_way_leaves_the_rest_to_join(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    # Linking holds its cases' cards until it commits (the SLA sweep waits for those),
    # so a big surge is linked a slice a transaction.
    size = 3 * incident_service.LINK_SLICE
    for slot in outage(OUTAGE_AT, minutes_per_slot=3, size=size):
        clock.current = slot.at
        await _ingest(http, slot.mentions)

    # Stopped as its third transaction commits: the first surge's incident and two of its
    # slices are stored.
    with pytest.raises(asyncio.CancelledError):
        await incident_service.detect(uow=_StopsAtCommit(app_deps.engine, 3), clock=clock,
                                      team=app_deps.team, text=app_deps.catalog)
    async with app_deps.engine.connect() as conn:
        (first,) = (await conn.execute(select(incidents))).all()
    surge = first.explanation["count"]  # the cases of the surge, all to be linked
    assert surge > 2 * incident_service.LINK_SLICE
    assert await _linked(app_deps, first.id) == 2 * incident_service.LINK_SLICE

    # The next check links the rest and opens that surge no second time.
    await scheduler.watch_incidents(app_deps)
    async with app_deps.engine.connect() as conn:
        opened = (await conn.execute(select(incidents))).all()
    assert await _linked(app_deps, first.id) == surge
    assert len({(i.topic, i.place) for i in opened}) == len(opened)


async def _linked(deps: Deps, incident_id: int) -> int:
    return await _count(deps, select(func.count()).select_from(incident_cases)
                        .where(incident_cases.c.incident_id == incident_id))


async def test_the_console_shows_the_open_incident_on_the_wallboard_and_its_page(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    created = await _replay(http, app_deps, clock, list(outage(OUTAGE_AT)))
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(str(http.make_url("")).rstrip("/")) as lead:
        assert await lead.sign_in("saule") == 303
        board = await lead.get("/")
        page = await lead.get("/incidents/1")
        missing = await lead.get("/incidents/99")

    assert board[0] == 200 and 'href="/incidents/1"' in board[1]
    assert "cases of Mobile internet in Almaty in 15 min" in html.unescape(board[1])
    assert page[0] == 200
    assert page[1].count('class="incident-case"') == len(created)
    assert "detected" in page[1] and "first mention" in page[1]
    assert missing[0] == 404


async def test_the_wallboard_banner_follows_the_incident_live(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    slots = list(outage(OUTAGE_AT))
    await access.set_password(app_deps, "saule", PASSWORD)
    base = str(http.make_url("")).rstrip("/")
    async with browser(base) as wall:
        assert await wall.sign_in("saule") == 303
        async with wall.session.get(base + "/events",
                                    headers={"Accept": "text/event-stream"}) as stream:
            before = await _next_board(stream)
            created = await _replay(http, app_deps, clock, slots[:-1])
            opened = await _board_until(stream, f"{len(created)} case(s) linked")
            late = await _replay(http, app_deps, clock, slots[-1:])
            grown = await _board_until(stream, f"{len(created) + len(late)} case(s) linked")
            await incident_service.resolve(1, "", actor="saule", uow=app_deps.uow(), clock=clock,
                                    team=app_deps.team)
            await scheduler.watch_incidents(app_deps)
            after = await _board_until(stream, "")

    assert before["incidents"].strip() == ""
    assert 'href="/incidents/1"' in opened["incidents"]
    assert "cases of Mobile internet in Almaty" in html.unescape(opened["incidents"])
    assert 'href="/incidents/1"' in grown["incidents"]
    assert after["incidents"].strip() == ""


async def _board_until(stream: Any, banner: str) -> dict[str, Any]:
    """Read the wallboard's stream until a board whose banners say `banner` (empty: until
    a board with no banner)."""
    async with asyncio.timeout(30):
        while True:
            board = await _next_board(stream)
            shown = html.unescape(board["incidents"])
            if (banner and banner in shown) or (not banner and not shown.strip()):
                return board
