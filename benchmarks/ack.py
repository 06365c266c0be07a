"""d. Claim click → ack: how long Slack waits for socialcare's answer to a button click,
against a bare slack-bolt app that only acks, each in a process of its own.

Slack's fake (in the benchmark's process) builds each click as Slack sends it — a
signed `block_actions` form POST to `/slack/events` — and a clicking process of its own
(`benchmarks.clicker`) sends it and takes the time from sending the request to reading
the answer (the fake, answering socialcare's card edits, never delays that reading).
socialcare runs whole in a child process (PostgreSQL, Redis, its dispatcher posting and
editing the cards within the rate limits, the scheduler ticking); each click claims a
different open case, so the work after the ack (the claim's transaction, the card's
edit) is real too. The bare app is slack-bolt's AsyncApp with one listener that acks,
served through the same aiohttp route, in another child process.

Two loads: ten clicks at once (a batch, then a pause), and ten one after the other.
The batches alternate between the two apps (which goes first alternates too); a pair
is one round of batches on both, and each pair gives the ratio of the p99s. The figure
is the median of the pairs' ratios, with their range, beside the load average and
socialcare's garbage-collection pauses while it was clicked.

The clicks name cases whose cards may not be posted yet (cards take a second each at
Slack's pace), so each click carries the newest card as its message: socialcare reads
the case from the button's action id only.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from typing import Any

from sqlalchemy import func, select

from benchmarks import children, fake_chat, open_cases, running, stores
from benchmarks.clicker import Clicker, Request, clicker
from benchmarks.table import Figure, at_most, percentile
from socialcare.bot.actions import ActionKind, CaseAction
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases
from tests.fakes.slack import FakeSlack

TARGET_RATIO = 1.2
AT_ONCE = 10
PAUSE = 0.5  # between batches
WARM_UP = 10


def load_average() -> str:
    """Return the machine's load average over 1, 5 and 15 minutes."""
    return "/".join(f"{load:.2f}" for load in os.getloadavg())


def claim_request(slack: FakeSlack, case_id: int) -> Request:
    """Build Slack's signed request for a click on Claim on a case's card."""
    request = slack.block_actions(
        action_id=CaseAction(ActionKind.CLAIM, case_id).pack(),
        channel=running.SLACK_CHANNEL, user=running.AGENT_SLACK, check=False,
    )
    return request.body, request.headers


async def _batch(sender: Clicker, slack: FakeSlack, url: str, case_ids: list[int], *,
                 at_once: bool) -> list[float]:
    return await sender.send(url, [claim_request(slack, c) for c in case_ids],
                             at_once=at_once)


async def _claimed(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(cases).where(cases.c.state == "claimed")
            return int((await conn.execute(query)).scalar() or 0)
    finally:
        await engine.dispose()


class _Cases:
    """Hands out each open case once."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> list[int]:
        taken = list(range(self.next + 1, self.next + count + 1))
        self.next += count
        return taken


async def measure(*, clicks: int, runs: int, log: Any = print,
                  profile_to: str | None = None) -> list[Figure]:
    """Measure `runs` pairs of `clicks` claim clicks per load, socialcare and bare Bolt."""
    url, redis = stores.postgres_url(), stores.redis_url()
    runs = max(3, runs)
    batches = max(1, clicks // AT_ONCE)
    await stores.reset_database(url)
    await stores.flush_redis(redis)
    await open_cases.seed(url, WARM_UP + 2 * batches * AT_ONCE * runs + 50)
    pairs: dict[str, list[tuple[float, float]]] = {"at once": [], "one by one": []}
    ours_report: dict[str, Any] = {}
    bare_report: dict[str, Any] = {}
    handed = _Cases()
    loads = [os.getloadavg()[0]]
    async with fake_chat.fakes(telegram=False) as fakes:
        slack = fakes.slack
        assert slack is not None
        endpoints = fakes.endpoints()
        async with children.serving("socialcare", port=running.free_port(),
                                    endpoints=endpoints, database_url=url, redis_url=redis,
                                    profile_to=profile_to, report=ours_report) as ours_base, \
                children.serving("bare", port=running.free_port(), endpoints=endpoints,
                                 report=bare_report) as bare_base, \
                clicker() as sender:
            ours_url, bare_url = f"{ours_base}/slack/events", f"{bare_base}/slack/events"
            for case_id in handed.take(WARM_UP):  # Bolt's first request runs auth.test
                await _batch(sender, slack, ours_url, [case_id], at_once=False)
                await _batch(sender, slack, bare_url, [case_id], at_once=False)
            for run in range(runs):
                for load, at_once in (("at once", True), ("one by one", False)):
                    ours: list[float] = []
                    bare: list[float] = []
                    for n in range(batches):
                        sides = [(ours_url, ours), (bare_url, bare)]
                        for target, into in sides if (n + run) % 2 == 0 else sides[::-1]:
                            ids = handed.take(AT_ONCE) if target == ours_url \
                                else list(range(1, AT_ONCE + 1))
                            into += await _batch(sender, slack, target, ids, at_once=at_once)
                            await asyncio.sleep(PAUSE if at_once else PAUSE / 5)
                    pairs[load].append((percentile(ours, 99), percentile(bare, 99)))
                    loads.append(os.getloadavg()[0])
                    log(f"  d. pair {run + 1}/{runs}, {AT_ONCE} {load}: socialcare p50 "
                        f"{percentile(ours, 50) * 1000:.1f} ms p99 "
                        f"{percentile(ours, 99) * 1000:.1f} ms; bare bolt p50 "
                        f"{percentile(bare, 50) * 1000:.1f} ms p99 "
                        f"{percentile(bare, 99) * 1000:.1f} ms (load {load_average()})")
            await asyncio.sleep(2.0)  # the last claims' work after their acks
    claimed = await _claimed(url)
    expected = handed.next
    gc_note = _gc_note(ours_report.get("gc"), bare_report.get("gc"))
    cpu_note = _cpu_note(ours_report.get("cpu_s"), bare_report.get("cpu_s"), clicks=expected)
    figures = []
    for load, (label, key) in {"at once": ("10 concurrent clicks", "c10"),
                               "one by one": ("sequential clicks", "sequential")}.items():
        ratios = [o / b for o, b in pairs[load]]
        ours_ms = [o * 1000 for o, _ in pairs[load]]
        bare_ms = [b * 1000 for _, b in pairs[load]]
        note = (f"{runs} pairs of {batches * AT_ONCE} clicks a side, each side in its own "
                f"process; ratio range {min(ratios):.2f}-{max(ratios):.2f} ×; socialcare "
                f"p99 {statistics.median(ours_ms):.1f} ms ({min(ours_ms):.1f}-"
                f"{max(ours_ms):.1f}), bare slack-bolt p99 {statistics.median(bare_ms):.1f} "
                f"ms ({min(bare_ms):.1f}-{max(bare_ms):.1f}); PostgreSQL + Redis; load "
                f"average {min(loads):.2f}-{max(loads):.2f}")
        if key == "c10":
            note += f"; {claimed} of {expected} clicked cases claimed; {cpu_note}; {gc_note}"
        figures.append(at_most(f"d. claim ack p99 ÷ bare slack-bolt, {label}", ratios, "×",
                               TARGET_RATIO, note=note,
                               detail={"pairs_s": pairs[load], "loads": loads,
                                       "gc": ours_report.get("gc"),
                                       "bare_gc": bare_report.get("gc")}))
    if claimed != expected:
        figures.append(Figure("d. (failed)", None, "",
                              note=f"{claimed} of {expected} clicked cases were claimed"))
    return figures


def _cpu_note(ours: float | None, bare: float | None, *, clicks: int) -> str:
    """Each side's processor time per click while clicked (all its work, the cards and
    timers included on socialcare's side): under load, a process that uses more of the
    processor waits longer for it."""
    if ours is None or bare is None or not clicks:
        return "processor time not reported"
    return (f"processor time per click: socialcare {ours / clicks * 1000:.1f} ms, bare "
            f"{bare / clicks * 1000:.1f} ms")


def _gc_note(ours: dict[str, Any] | None, bare: dict[str, Any] | None) -> str:
    if not ours or not bare:
        return "garbage collections not reported"
    return (f"garbage collections while clicked: socialcare {ours['gen2']['count']} full, "
            f"longest {ours['gen2']['max_ms']:.0f} ms (young {ours['gen0']['max_ms']:.1f}/"
            f"{ours['gen1']['max_ms']:.1f} ms), {ours['tracked_objects']:,} tracked objects "
            f"at the end; bare {bare['gen2']['count']} full, longest "
            f"{bare['gen2']['max_ms']:.0f} ms")


async def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="row d alone, optionally profiled")
    parser.add_argument("--clicks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", help="write socialcare's pyinstrument profile here")
    args = parser.parse_args()
    from benchmarks.table import render

    print(render(await measure(clicks=args.clicks, runs=args.runs, profile_to=args.profile)))


if __name__ == "__main__":
    asyncio.run(_main())
