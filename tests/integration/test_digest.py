"""The directors' weekly digest, from a seeded history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from socialcare.bot import cases
from socialcare.bot import escalations as esc
from socialcare.bot.digest import Week, build_digest, digest_markdown, digest_summary, due_digest
from socialcare.bot.escalations import Category
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import EscalationConfig, Topic
from socialcare.settings import load_catalog
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

TEAM = make_team(escalation=EscalationConfig(digest_day="monday", digest_time="09:00"))
# Monday 2026-11-23 00:00 in Almaty (UTC+5) is Sunday 19:00 UTC.
WEEK = Week.of(datetime(2026, 11, 25, 12, tzinfo=UTC), TEAM.zone)


async def _escalation(storage: Storage, clock: FakeClock, at: datetime, category: Category,
                      problem: str, *, decide: str | None = None) -> int:
    clock.current = at
    [result] = await Pipeline(TEAM, clock=clock).ingest(
        [mention(f"{problem}-{at.isoformat()}", f"Kcell {problem}", published_at=at)],
        uow=storage.uow())
    escalation = await esc.escalate(
        esc.Escalate((result.case_id,), "aigerim", category, problem, ("Fix it", "Wait"),
                     "nurlan"), uow=storage.uow(), clock=clock, team=TEAM)
    if decide:
        await esc.decide(esc.Decide(escalation.id, "nurlan", decide), uow=storage.uow(),
                         clock=clock, team=TEAM)
    return escalation.id


async def test_the_digest_lists_every_escalation_of_its_week_by_category_and_no_other(
    storage: Storage, clock: FakeClock
) -> None:
    before = WEEK.start - timedelta(minutes=1)  # Sunday 23:59 local: the week before
    after = WEEK.end  # next Monday 00:00 local
    ids = {
        "earlier": await _escalation(storage, clock, before, Category.CRITICAL, "earlier"),
        "outage": await _escalation(storage, clock, WEEK.start, Category.CRITICAL, "outage",
                                    decide="Roll back the release"),
        "queue": await _escalation(storage, clock, WEEK.start + timedelta(days=3),
                                   Category.INSIGHT, "queues"),
        "praise": await _escalation(storage, clock, WEEK.end - timedelta(minutes=1),
                                    Category.POSITIVE, "praise"),
        "later": await _escalation(storage, clock, after, Category.POSITIVE, "later"),
    }

    digest = await build_digest(WEEK, uow=storage.uow(), now=after + timedelta(hours=9))
    agenda = digest_markdown(digest, team=TEAM, catalog=load_catalog("en"))

    assert [e.id for e in digest.escalations[Category.CRITICAL]] == [ids["outage"]]
    assert [e.id for e in digest.escalations[Category.INSIGHT]] == [ids["queue"]]
    assert [e.id for e in digest.escalations[Category.POSITIVE]] == [ids["praise"]]
    assert "**Decision:** Roll back the release" in agenda
    assert "earlier" not in agenda and "later" not in agenda
    assert "## Critical (1)" in agenda and "## Food for thought (1)" in agenda
    assert "Responsible: Nurlan · decided · linked cases: 1" in agenda
    # Three cases were published this week, all unanswered past their deadline.
    main = next(tally for tier, tally in digest.sla.items() if tier.value == "main")
    assert main.missed == 3


async def test_sla_figures_of_the_week_count_met_and_missed_answers(
    storage: Storage, clock: FakeClock
) -> None:
    clock.current = WEEK.start + timedelta(hours=10)
    results = await Pipeline(TEAM, clock=clock).ingest(
        [mention(i, published_at=clock.current) for i in range(3)], uow=storage.uow())
    deps = {"uow": storage.uow(), "clock": clock, "team": TEAM}
    clock.advance(minutes=5)
    await cases.mark_answered(cases.MarkAnswered(results[0].case_id, "aigerim"), **deps)
    clock.advance(minutes=30)
    await cases.mark_answered(cases.MarkAnswered(results[1].case_id, "aigerim"), **deps)

    digest = await build_digest(WEEK, uow=storage.uow(), now=clock.current)

    main = next(tally for tier, tally in digest.sla.items() if tier.value == "main")
    assert (main.met, main.missed, main.pending) == (1, 2, 0)


def test_the_digest_of_last_week_is_due_from_monday_at_its_time_in_the_team_zone() -> None:
    monday_9_local = WEEK.start + timedelta(hours=9)

    assert due_digest(TEAM, monday_9_local - timedelta(seconds=1)) is None
    assert due_digest(TEAM, monday_9_local) == WEEK.previous()
    assert due_digest(TEAM, WEEK.end - timedelta(seconds=1)) == WEEK.previous()
    assert WEEK.key == "2026-W48"


async def test_the_digest_counts_the_weeks_cases_by_topic_against_the_week_before(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(topics=(
        Topic(name="internet", title="Mobile internet", keywords=("интернет", "internet")),
        Topic(name="roaming", title="Roaming", keywords=("роуминг",)),
    ))
    texts = {WEEK.start - timedelta(days=2): ["Кселлдің интернеті жоқ", "Kcell роуминг"],
             WEEK.start + timedelta(days=1): ["У Кселла интернет пропал", "Kcell internet?",
                                              "Kcell internet again", "Kcell hello"]}
    n = 0
    for at, batch in texts.items():
        clock.current = at
        for text in batch:
            n += 1
            await Pipeline(team, clock=clock).ingest(
                [mention(f"t{n}", text, published_at=at)], uow=storage.uow())

    digest = await build_digest(WEEK, uow=storage.uow(), now=WEEK.end + timedelta(hours=9))
    catalog = load_catalog("en")
    summary = digest_summary(digest, team=team, catalog=catalog)
    agenda = digest_markdown(digest, team=team, catalog=catalog)

    assert (digest.topics, digest.previous_topics) == (
        {"internet": 3, "-": 1}, {"internet": 1, "roaming": 1})
    assert "Mobile internet: 3 (+2 (+200%))" in summary
    assert "Roaming: 0 (−1 (−100%))" in summary
    assert "no topic: 1 (new)" in summary
    assert "## Cases by topic (change against the week before)" in agenda
