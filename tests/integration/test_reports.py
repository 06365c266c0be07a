"""Reports equal a brute-force recomputation from the events, over random histories."""

from __future__ import annotations

import dataclasses
import random
import statistics
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcare.bot import cases, handoffs
from socialcare.bot.errors import DomainError
from socialcare.bot.metrics import case_facts
from socialcare.bot.model import Event, EventKind
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.report_text import shown_bucket
from socialcare.bot.reports import (
    Period,
    Report,
    Stat,
    aggregate,
    parse_period,
    topic_counts,
)
from socialcare.bot.team import Channel, SecondLineTeam, Topic
from socialcare.bot.understanding import topics
from socialcare.storage.facts import facts_row
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.mentions import BRAND_REPLY, mention

TEAM = make_team(
    second_line=(SecondLineTeam(name="billing", title="Billing", channels=(
        Channel(messenger="slack", id="C0BILL"),)),),
    topics=(Topic(name="internet", title="Internet", keywords=("интернет", "internet")),
            Topic(name="billing", title="Billing", keywords=("деньги", "refund"))),
)
AGENTS = ["aigerim", "daniyar", "saule"]
ACTIONS = ["claim", "answer", "customer", "resolve", "dismiss", "handoff", "handback", "wait",
           "topic", "brand"]
TEXTS = ["Kcell #{i}", "Кселл, где интернет? #{i}", "Kcell refund please #{i}",
         "Кселлдің интернеті жоқ, деньги верните #{i}"]


async def _random_history(storage: Storage, clock: FakeClock, rng: random.Random) -> None:
    """Ingest cases over three days and act on them at random."""
    raws = []
    for i in range(rng.randint(5, 25)):
        published = T0 + timedelta(minutes=rng.randint(0, 3 * 24 * 60))
        source = rng.choice(["webhook", "forums"])
        platform = rng.choice(["instagram", "vk", "forum"])
        raws.append(mention(f"m{i}", rng.choice(TEXTS).format(i=i), source=source,
                            platform=platform, published_at=published))
    clock.current = max(r.published_at for r in raws) + timedelta(minutes=rng.randint(0, 20))
    results = await Pipeline(TEAM, clock=clock).ingest(raws, uow=storage.uow())
    ids = [r.case_id for r in results if r.case_id]
    for _ in range(rng.randint(0, 60)):
        case_id, action, who = rng.choice(ids), rng.choice(ACTIONS), rng.choice(AGENTS)
        clock.advance(minutes=rng.randint(0, 40))
        deps = {"uow": storage.uow(), "clock": clock, "team": TEAM}
        try:
            if action == "claim":
                await cases.claim(cases.Claim(case_id, who), **deps)
            elif action == "answer":
                await cases.mark_answered(cases.MarkAnswered(case_id, who), **deps)
            elif action == "resolve":
                await cases.resolve(cases.Resolve(case_id, who), **deps)
            elif action == "dismiss":
                await cases.dismiss(cases.Dismiss(case_id, who), **deps)
            elif action == "handoff":
                await handoffs.hand_off(handoffs.HandOff(case_id, who, "billing"), **deps)
            elif action == "topic":
                await topics.set_topics(topics.SetTopics(case_id, who, tuple(rng.sample(
                    ["internet", "billing"], rng.randint(0, 2)))), **deps)
            elif action == "handback":
                await handoffs.hand_back(handoffs.HandBack(case_id, "team:billing"), **deps)
            elif action == "brand":
                # The brand's post, delivered late by the listening platform: published
                # up to an hour before now, perhaps before an agent's Mark answered.
                await Pipeline(TEAM, clock=clock).ingest([mention(
                    f"b{rng.random()}", "We are on it", author=BRAND_REPLY,
                    thread_id=_thread(case_id, raws, results),
                    published_at=clock.now() - timedelta(minutes=rng.randint(0, 60)))],
                    uow=storage.uow())
            elif action == "customer":
                await Pipeline(TEAM, clock=clock).ingest([mention(
                    f"c{rng.random()}", "and?", thread_id=_thread(case_id, raws, results),
                    published_at=clock.now())], uow=storage.uow())
        except DomainError:
            pass


def _thread(case_id: int, raws, results) -> str:  # type: ignore[no-untyped-def]
    return next(r.external_id for r, res in zip(raws, results, strict=True)
                if res.case_id == case_id)


def _q(values: list[float], q: float) -> float | None:
    """The percentile as the team defines it, by the standard library."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8] if q == 0.9 \
        else statistics.median(values)


def _brute_force(histories: dict[int, list[Event]], period: Period, now: datetime) -> dict:  # type: ignore[type-arg]
    """Every figure straight from the events, without the metrics module."""
    reactions, lags, resolutions, messages = [], [], [], {"1": 0, "2": 0, "3": 0, "4+": 0}
    met = missed = dismissed = void = 0
    cases = 0
    per_tier: dict[str, list[float]] = {}
    per_topic: dict[str, int] = {}
    per_language: dict[str, int] = {}
    for events in histories.values():
        created = events[0].data
        published = datetime.fromisoformat(created["published_at"])
        if not period.start <= published < period.end:
            continue
        cases += 1
        changes = [e.data["topics"] for e in events if e.kind is EventKind.TOPICS_CHANGED]
        for topic in (changes[-1] if changes else created["topics"]) or ["-"]:
            per_topic[topic] = per_topic.get(topic, 0) + 1
        language = created["language"] or "-"
        per_language[language] = per_language.get(language, 0) + 1
        due = datetime.fromisoformat(created["response_due_at"])
        # The first answer is the earliest by its time, whenever it reached us.
        answers = sorted(e.at for e in events if e.kind is EventKind.AGENT_MESSAGE)
        lags.append(max(0.0, (datetime.fromisoformat(created["collected_at"])
                              - published).total_seconds()))
        closing = [e for e in events if e.kind in (EventKind.RESOLVED, EventKind.DISMISSED,
                                                   EventKind.REOPENED)]
        last = closing[-1].kind if closing else None
        if answers:
            reactions.append((answers[0] - published).total_seconds())
            per_tier.setdefault(created["tier"], []).append(reactions[-1])
            met += answers[0] <= due
            missed += answers[0] > due
        elif last is EventKind.DISMISSED and closing[-1].at <= due:
            void += 1  # dismissed before its deadline: no answer was needed
        elif now > due:
            missed += 1
        dismissed += last is EventKind.DISMISSED
        if last is EventKind.RESOLVED:
            at = closing[-1]
            resolutions.append((at.at - published).total_seconds())
            count = sum(1 for e in events[:events.index(at)] if e.kind in (
                EventKind.CREATED, EventKind.CUSTOMER_MESSAGE, EventKind.AGENT_MESSAGE))
            messages["4+" if count >= 4 else str(count)] += 1
    return {
        "reaction": (len(reactions), _q(reactions, 0.5), _q(reactions, 0.9)),
        "lag": (len(lags), _q(lags, 0.5), _q(lags, 0.9)),
        "resolution": (len(resolutions), _q(resolutions, 0.5), _q(resolutions, 0.9)),
        "messages": messages, "met": met, "missed": missed, "dismissed": dismissed,
        "pending": cases - met - missed - void,
        "tiers": {t: (len(v), _q(v, 0.5), _q(v, 0.9)) for t, v in per_tier.items()},
        "topics": per_topic, "languages": per_language,
    }


def _shown(value: float | None) -> int | None:
    """A duration at the precision reports show it (`duration`): a percentile from the
    roll-ups is exact to it, not to the last bit."""
    return None if value is None else shown_bucket(value)


def _comparable(report: Report) -> Any:
    """The report as plain data, its floats rounded past the sums' last bits, its
    percentiles to the precision shown."""
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, dict) and value.keys() == {"count", "median", "p90"}:
            return _stat(Stat(**value))
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value
    return rounded(dataclasses.asdict(dataclasses.replace(report, escalations={},
                                                          previous_topics={}, answers={})))


def _stat(stat) -> tuple:  # type: ignore[no-untyped-def,type-arg]
    return (stat.count, _shown(stat.median), _shown(stat.p90))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(min_value=0, max_value=10_000),
       span=st.sampled_from(["2026-11-25..2026-11-25", "2026-11-25..2026-11-27",
                             "2026-11-26..2026-11-30"]))
@pytest.mark.asyncio
async def test_a_report_equals_a_brute_force_recomputation_from_the_events(
    seed: int, span: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from socialcare.storage import redis as redis_store
    from socialcare.storage.database import SqlUnitOfWork, create_engine
    from tests.conftest import database_url, reset_database

    url = database_url(tmp_path_factory.mktemp("reports"))
    await reset_database(url)
    engine = create_engine(url)
    storage = Storage(url=url, engine=engine, redis=redis_store.connect(None))
    try:
        clock = FakeClock()
        await _random_history(storage, clock, random.Random(seed))
        now = clock.now() + timedelta(hours=1)
        period = parse_period(span, now=now, zone=TEAM.zone)
        async with storage.uow() as uow:
            report = await uow.reports.report(period, now=now)
            stored = [row async for row in uow.reports.facts(period)]
            before = [row async for row in uow.reports.facts(period.previous)]
            histories = await uow.events.for_cases(range(1, 200))
            # The wallboard's figures, from kept counts and index reads.
            sla = await uow.reports.sla_counts(period, now=now)
            today = await uow.reports.sla_counts(
                parse_period("today", now=clock.now(), zone=TEAM.zone), now=clock.now())
            today_report = await uow.reports.report(
                parse_period("today", now=clock.now(), zone=TEAM.zone), now=clock.now())
            open_counts = await uow.cases.count_open()
            head = await uow.cases.list_open(limit=7)
            every_open = await uow.cases.list_open(limit=500)
            all_cases = await uow.cases.get_many(list(range(1, 200)))
            firsts = await uow.mentions.first_of(list(all_cases))
        # The board's one statement, outside a transaction on PostgreSQL.
        async with SqlUnitOfWork(engine, reads_only=True) as uow:
            read = await uow.console.board(
                rows=7, period=parse_period("today", now=clock.now(), zone=TEAM.zone),
                now=clock.now())
        # Folded into one row per key, the kept counts stay the same.
        async with storage.uow() as uow:
            await uow.console.fold_counts(above=0)
            await uow.commit()
        async with storage.uow() as uow:
            folded = (await uow.reports.sla_counts(period, now=now),
                      await uow.cases.count_open())
    finally:
        await engine.dispose()

    expected = _brute_force(histories, period, now)
    assert [facts_row(f) for f in stored] == sorted(
        (facts_row(case_facts(h)) for h in histories.values()
         if period.start <= case_facts(h).published_at < period.end),
        key=lambda r: (r["published_at"], r["case_id"]))
    assert _stat(report.total.reaction) == _stat(Stat(*expected["reaction"]))
    assert _stat(report.collector_lag) == _stat(Stat(*expected["lag"]))
    assert _stat(report.resolution) == _stat(Stat(*expected["resolution"]))
    assert report.messages == expected["messages"]
    assert (report.total.met, report.total.missed, report.total.dismissed,
            report.total.pending) == (expected["met"], expected["missed"],
                                      expected["dismissed"], expected["pending"])
    assert report.breaches == expected["missed"]
    tiers = {g.key: _stat(g.reaction) for g in report.groups["tier"] if g.reaction.count}
    assert tiers.keys() == expected["tiers"].keys()
    for tier, stat in tiers.items():
        assert stat == _stat(Stat(*expected["tiers"][tier]))
    assert sum(d.cases for d in report.days) == report.total.cases
    assert {g.key: g.cases for g in report.groups["topic"]} == expected["topics"]
    assert {g.key: g.cases for g in report.groups["language"]} == expected["languages"]
    assert report.previous_topics == topic_counts(before, period=period.previous) == \
        _brute_force(histories, period.previous, now)["topics"]
    # Answers by form: every agent's message of the period (these are all text).
    answered = sum(1 for h in histories.values() for e in h
                   if e.kind.value == "agent_message" and period.start <= e.at < period.end)
    assert report.answers == ({"text": answered} if answered else {})
    # The wallboard's share and counters equal the report's and the cases' own.
    assert (sla.met, sla.missed, sla.pending) == (report.total.met, report.total.missed,
                                                  report.total.pending)
    assert (today.met, today.missed, today.pending) == (
        today_report.total.met, today_report.total.missed, today_report.total.pending)
    assert folded == (sla, open_counts)
    opened = [c for c in all_cases.values() if c.is_open]
    assert open_counts == {t: n for t in {c.tier for c in opened}
                           if (n := sum(c.tier is t for c in opened))}
    work_order = sorted(opened, key=lambda c: (c.response_due_at is None,
                                               c.response_due_at or T0, c.priority.rank, c.id))
    assert [c.id for c in every_open] == [c.id for c in work_order]
    assert [c.id for c in head] == [c.id for c in work_order[:7]]
    # The board's read holds the same: the head with each case's first mention, the
    # counts per tier and today's share.
    assert [(case, first) for case, first in read.head] == [
        (all_cases[c.id], firsts.get(c.id)) for c in work_order[:7]]
    assert (read.figures.open, read.figures.share) == (open_counts, today)
    if url.startswith("postgresql"):  # on SQLite the report is this very computation
        # Every breakdown, day and breach of the report aggregated in SQL is the
        # definition's, computed in Python from the same facts.
        assert _comparable(report) == _comparable(aggregate(stored, period=period, now=now))
