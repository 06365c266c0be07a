"""What people type — commands' arguments, replies, notes, reasons, escalations — keeps
no NUL or other control characters, on every back end (PostgreSQL cannot store NUL)."""

from __future__ import annotations

from socialcare.adapters.telemetry import Telemetry
from socialcare.bot import cases
from socialcare.bot import escalations as esc
from socialcare.bot.escalations import Category
from socialcare.bot.model import EventKind
from socialcare.bot.pipeline import Pipeline
from socialcare.deps import Deps
from socialcare.handlers.commands import run_command
from socialcare.settings import Settings, load_catalog
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

TEAM = make_team()


def _deps(storage: Storage, clock: FakeClock) -> Deps:
    return Deps(settings=Settings(database_url=storage.url), team=TEAM,
                catalog=load_catalog("en"), clock=clock, engine=storage.engine,
                redis=storage.redis, pipeline=Pipeline(TEAM, clock=clock),
                telemetry=Telemetry())


async def _cases(storage: Storage, clock: FakeClock, n: int) -> list[int]:
    results = await Pipeline(TEAM, clock=clock).ingest(
        [mention(i, f"Kcell, no network #{i}") for i in range(n)], uow=storage.uow())
    return [r.case_id or 0 for r in results]


async def test_nul_in_an_answer_note_and_a_dismissal_reason_is_dropped(
    storage: Storage, clock: FakeClock
) -> None:
    answered, dismissed = await _cases(storage, clock, 2)
    service = {"uow": storage.uow(), "clock": clock, "team": TEAM}

    await cases.mark_answered(cases.MarkAnswered(answered, "aigerim", text="on\x00 it\x07",
                                                 url="https://x.example/\x00r"), **service)
    await cases.dismiss(cases.Dismiss(dismissed, "aigerim", reason="spam\x00\x1b"), **service)

    async with storage.uow() as uow:
        events = await uow.events.for_cases([answered, dismissed])
    [answer] = [e for e in events[answered] if e.kind is EventKind.AGENT_MESSAGE]
    [dismissal] = [e for e in events[dismissed] if e.kind is EventKind.DISMISSED]
    assert (answer.data["text"], answer.data["url"]) == ("on it", "https://x.example/r")
    assert dismissal.data["reason"] == "spam"


async def test_nul_in_a_slash_commands_arguments_is_dropped_before_they_are_read(
    storage: Storage, clock: FakeClock
) -> None:
    [case_id] = await _cases(storage, clock, 1)
    deps = _deps(storage, clock)
    aigerim = TEAM.person("aigerim")

    shown = await run_command("case", f"{case_id}\x00", aigerim, deps)
    escalated = await run_command(
        "escalate", f"{case_id} critical @nurlan No\x00 4G\x00 in Almaty | Roll\x00 back",
        aigerim, deps)

    assert f"#{case_id}" in shown.text and "Usage" not in shown.text
    assert escalated.text.startswith("Escalation #")
    async with storage.uow() as uow:
        [escalation] = await uow.escalations.find(limit=5)
    assert (escalation.problem, escalation.options) == ("No 4G in Almaty", ("Roll back",))


async def test_nul_in_an_escalations_decision_and_remark_is_dropped(
    storage: Storage, clock: FakeClock
) -> None:
    ids = await _cases(storage, clock, 1)
    service = {"uow": storage.uow(), "clock": clock, "team": TEAM}
    made = await esc.escalate(esc.Escalate(
        case_ids=tuple(ids), actor="aigerim", category=Category.CRITICAL,
        problem="Outage\x00", options=("A\x00",), director="nurlan"), **service)

    await esc.comment(esc.Comment(made.id, "aigerim", "see\x00 #1"), **service)
    await esc.decide(esc.Decide(made.id, "nurlan", "Roll\x00 back"), **service)

    async with storage.uow() as uow:
        stored = await uow.escalations.get(made.id)
    assert (stored.problem, stored.options, stored.decision) == ("Outage", ("A",), "Roll back")
