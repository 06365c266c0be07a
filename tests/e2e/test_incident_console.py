"""An incident run from the web console, through the real POST /ingest, the scheduler's
incident check and the console's forms: a shift lead acknowledges it, answers it, takes
out and adds back cases and resolves it with a follow-up on /incidents/N — what
`/incident N …` does, with its roster check and the console's CSRF check; an agent reads
the page and is refused every change. The timeline (first mention, detection,
acknowledgement, answer, closing) is kept with who and when, and `/report` and the
weekly digest give the incident's figures, to the minute, from a controlled clock."""

from __future__ import annotations

import html
from datetime import timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from socialcare.console import access
from socialcare.deps import Deps
from socialcare.handlers import incidenting, reporting, scheduler
from socialcare.storage.schema import announcements, cases, incident_cases, incidents
from tests.conftest import FakeClock
from tests.corpus.outage import outage
from tests.e2e.test_console import PASSWORD, browser, csrf_of
from tests.e2e.test_incidents import OUTAGE_AT, _ingest

# The first outage slot's mentions were all published at OUTAGE_AT + 4:30.
FIRST = OUTAGE_AT + timedelta(minutes=4, seconds=30)
DETECTED = FIRST + timedelta(minutes=3)
ACKNOWLEDGED = FIRST + timedelta(minutes=5)
ANSWERED = FIRST + timedelta(minutes=8)
RESOLVED = DETECTED + timedelta(minutes=60)
ANSWER = "Mobile internet in Almaty is down; engineers are on it, back by 16:00"
FOLLOW_UP = "Service is restored"
STEPS = ("first_mention", "detected", "acknowledged", "answered", "resolved")


async def _open_incident(http: TestClient, deps: Deps, clock: FakeClock) -> list[int]:
    """Thirty outage mentions, then the scheduler's check three minutes after the first
    of them: incident #1 opens; return its cases."""
    [slot, *_] = outage(OUTAGE_AT, minutes_per_slot=5)
    clock.current = slot.at
    created = await _ingest(http, slot.mentions[:30])
    clock.current = DETECTED
    assert [i.id for i in await scheduler.watch_incidents(deps)] == [1]
    async with deps.uow() as uow:
        linked = sorted(await uow.incidents.case_ids(1))
    assert linked and set(linked) <= {r["case_id"] for r in created}
    return linked


async def _incident(deps: Deps) -> tuple[object, list[tuple[str, str, object]], list[int]]:
    """Return incident #1's row, its timeline (kind, actor, at) and its linked cases."""
    async with deps.uow() as uow:
        events = [(e.kind, e.actor, e.at) for e in await uow.incidents.events_for(1)]
        linked = sorted(await uow.incidents.case_ids(1))
    async with deps.engine.connect() as conn:
        row = (await conn.execute(select(incidents).where(incidents.c.id == 1))).one()
    return row, events, linked


async def test_a_lead_runs_the_incident_from_its_console_page_and_an_agent_only_reads_it(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    linked = await _open_incident(http, app_deps, clock)
    await access.set_password(app_deps, "saule", PASSWORD)
    await access.set_password(app_deps, "aigerim", PASSWORD)
    base = str(http.make_url("")).rstrip("/")
    async with browser(base) as lead, browser(base) as agent:
        assert await lead.sign_in("saule") == 303
        assert await agent.sign_in("aigerim") == 303
        _, read_only, _ = await agent.get("/incidents/1")
        token = csrf_of(read_only)
        refused = [await agent.post(f"/incidents/1/{verb}", {"csrf": token, "text": text})
                   for verb, text in (("ack", ""), ("answer", ANSWER),
                                      ("remove", str(linked[0])), ("resolve", ""))]
        _, page, _ = await lead.get("/incidents/1")
        token = csrf_of(page)
        forged = await lead.post("/incidents/1/ack", {"csrf": "guess"})
        unknown = await lead.post("/incidents/1/explode", {"csrf": token})
        untouched = await _incident(app_deps)

        clock.current = ACKNOWLEDGED
        acked = await lead.post("/incidents/1/ack", {"csrf": token})
        again = await lead.post("/incidents/1/ack", {"csrf": token})
        bad = [await lead.post("/incidents/1/answer", {"csrf": token, "text": " \x00 "}),
               await lead.post("/incidents/1/answer", {"csrf": token, "text": "x" * 3001}),
               await lead.post("/incidents/1/remove", {"csrf": token, "text": "1;DROP"}),
               await lead.post("/incidents/1/add", {"csrf": token, "text": "999999"})]
        clock.current = ANSWERED
        answered = await lead.post("/incidents/1/answer", {"csrf": token, "text": ANSWER})
        second = await lead.post("/incidents/1/answer", {"csrf": token, "text": "Another"})
        out = linked[:2]
        removed = await lead.post("/incidents/1/remove",
                                  {"csrf": token, "text": f"{out[0]}, #{out[1]}"})
        after_removal = (await _incident(app_deps))[2]
        added = await lead.post("/incidents/1/add", {"csrf": token, "text": f"{out[0]} {out[1]}"})
        _, answered_page, _ = await lead.get("/incidents/1")
        clock.current = RESOLVED
        resolved = await lead.post("/incidents/1/resolve", {"csrf": token, "text": FOLLOW_UP})
        await scheduler.watch_incidents(app_deps)
        _, closed_page, _ = await lead.get("/incidents/1")
        _, agent_page, _ = await agent.get("/incidents/1")
        status = await incidenting.status(1, app_deps)
        reported = await reporting.run_report("today", app_deps)
        _, digest, _ = await lead.get("/reports/digest.md")

    # The agent reads the page, with no form, and every change is refused.
    assert "incident-actions" not in read_only and 'action="/incidents/1/' not in read_only
    assert [code for code, _, _ in refused] == [403] * 4
    assert forged[0] == 403 and unknown[0] == 404
    row, events, now_linked = untouched
    assert row.acknowledged_at is None and row.answer is None and now_linked == linked
    assert [kind for kind, _, _ in events if kind in STEPS] == ["first_mention", "detected"]
    # The lead's page has the forms, each with the session's CSRF token.
    for verb in ("ack", "answer", "add", "remove", "resolve"):
        assert f'action="/incidents/1/{verb}"' in page
    actions = page[page.index('class="incident-actions"'):page.index('class="incident-cases"')]
    assert actions.count(f'name="csrf" value="{token}"') == 5
    # Acknowledged once, by the lead, when she pressed it; a second press is refused.
    assert acked[0] == 303 and acked[2].headers["Location"] == "/incidents/1"
    assert again[0] == 400 and "acknowledged already" in again[1]
    # Bad input: a reason and a 400, nothing done.
    assert [code for code, _, _ in bad] == [400] * 4
    assert "Write the official answer" in bad[0][1] and "at most 3000" in bad[1][1]
    assert "case numbers are not clear" in bad[2][1] and "999999" in bad[3][1]
    # The answer: what /incident 1 answer does (announced once, the incident's answer).
    assert answered[0] == 303 and second[0] == 400 and "has its answer" in second[1]
    assert removed[0] == 303 and after_removal == linked[2:]
    assert added[0] == 303
    assert 'action="/incidents/1/ack"' not in answered_page
    assert 'action="/incidents/1/answer"' not in answered_page
    assert html.escape(ANSWER) in answered_page
    # Resolved with the follow-up: announced, and every linked case resolved with it.
    assert resolved[0] == 303
    assert "incident-actions" not in closed_page and "incident-actions" not in agent_page
    async with app_deps.engine.connect() as conn:
        announced = [r.text for r in await conn.execute(
            select(announcements).order_by(announcements.c.id))]
        states = {r.state for r in await conn.execute(
            select(cases.c.state).join(incident_cases, incident_cases.c.case_id == cases.c.id))}
    assert announced == [ANSWER, FOLLOW_UP] and states == {"resolved"}
    row, events, final = await _incident(app_deps)
    assert final == linked
    assert (row.state, row.answer, row.answered_by, row.follow_up, row.resolved_by) == (
        "resolved", ANSWER, "saule", FOLLOW_UP, "saule")
    assert row.acknowledged_at == ACKNOWLEDGED
    steps = [(kind, actor, at) for kind, actor, at in events if kind in STEPS]
    assert steps == [("first_mention", "system", FIRST), ("detected", "system", DETECTED),
                     ("acknowledged", "saule", ACKNOWLEDGED), ("answered", "saule", ANSWERED),
                     ("resolved", "saule", RESOLVED)]
    # The page and /incident 1 show the five steps, with the times and who.
    timeline = closed_page[closed_page.index('class="incident-timeline"'):]
    for kind in STEPS:
        assert f'data-kind="{kind}"' in timeline
    assert "acknowledged · Saule" in html.unescape(timeline)
    local = {at: at.astimezone(app_deps.team.zone).strftime("%H:%M")
             for at in (FIRST, DETECTED, ACKNOWLEDGED, ANSWERED, RESOLVED)}
    assert [line for line in status.splitlines()[1:6]] == [
        f"25.11 {local[FIRST]} first mention", f"25.11 {local[DETECTED]} detected",
        f"25.11 {local[ACKNOWLEDGED]} acknowledged by Saule",
        f"25.11 {local[ANSWERED]} official answer", f"25.11 {local[RESOLVED]} resolved"]
    # The report and the weekly digest: how long, how many cases, and the times from
    # the first mention to detection (3 min) and to the official answer (8 min).
    line = (f"Incidents: 1 (0 open), {len(linked)} case(s); lasted 60 min on average "
            "(longest 60 min); first mention → detection 3 min, → official answer 8 min")
    assert line in reported.text
    assert f"- 🚨 {line}" in digest


async def test_the_first_answer_is_the_acknowledgement_when_nobody_acknowledged(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await _open_incident(http, app_deps, clock)
    await access.set_password(app_deps, "admin", PASSWORD)
    async with browser(str(http.make_url("")).rstrip("/")) as admin:
        assert await admin.sign_in("admin") == 303
        token = await admin.csrf("/incidents/1")
        clock.current = ANSWERED
        answered = await admin.post("/incidents/1/answer", {"csrf": token, "text": ANSWER})
        late = await admin.post("/incidents/1/ack", {"csrf": token})

    row, events, _ = await _incident(app_deps)
    assert answered[0] == 303 and late[0] == 400
    assert row.acknowledged_at == ANSWERED
    assert [(kind, actor, at) for kind, actor, at in events
            if kind in ("acknowledged", "answered")] == [
        ("acknowledged", "admin", ANSWERED), ("answered", "admin", ANSWERED)]
    async with app_deps.uow() as uow:
        [acknowledged] = [e for e in await uow.incidents.events_for(1)
                          if e.kind == "acknowledged"]
    assert acknowledged.data == {"by_answer": True}
