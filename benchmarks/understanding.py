"""i. Understanding at ingest: throughput with word forms, language and topics against
exact-only brand matching, in the same run, on SQLite and PostgreSQL; and what the
language detector costs in memory.

Both pipelines are the real one (`Pipeline.ingest` over `SqlUnitOfWork`), fed the same
batches of 100 mentions (every text names a brand as written, so both store every
mention). The baseline's matcher knows the brands only, matches their keywords only
as written and detects no language; the measured one reads word forms, the language,
topics and places of config.example.toml (and writes the cases' topic and place rows).
Each run is a pair: both pipelines ingest the same mentions, each into its own fresh
database, taking turns batch by batch (which one takes a batch first alternates batch
by batch, and which one starts alternates run by run), so that both meet the shared
machine's neighbours alike. The figure is the median of the runs' ratios, with their
range and the load average. The memory figure is the growth of a fresh process's peak
RSS from reading 1,000 mentions with the detector loaded.

    python -m benchmarks.understanding [--quick]

exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

from benchmarks import ingest, running, stores
from benchmarks.table import Figure, at_least, at_most, render
from socialcare.adapters.clock import SystemClock
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.understanding.matcher import Matcher
from socialcare.settings import load_team
from socialcare.storage.database import SqlUnitOfWork, create_engine

TARGET_RATIO = 0.9
TARGET_DETECTOR_MB = 40.0

_RSS_CHILD = """
import json, pathlib, sys
from socialcare.bot.pipeline import matcher_for
from socialcare.settings import load_team
def rss():
    lines = pathlib.Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmRSS"))
texts = json.loads(sys.stdin.read())
matcher = matcher_for(load_team(pathlib.Path(sys.argv[1])))
before = rss()
for text in texts:
    matcher.read(text)
after = rss()
print(json.dumps({"before_kb": before, "after_kb": after}))
"""


async def _pair(urls: dict[str, str], batches: Any, matchers: dict[str, Matcher], *,
                first: int) -> tuple[dict[str, float], dict[str, float]]:
    """Ingest the batches through one pipeline a matcher, each into its own fresh
    database, batch by batch in turn (which pipeline takes a batch first alternates
    batch by batch, starting with the `first`); return each one's mentions a second and
    this process's CPU a mention in µs (the database server's not counted)."""
    team = load_team(running.CONFIG)
    engines = {name: create_engine(url) for name, url in urls.items()}
    pipelines = {name: Pipeline(team, clock=SystemClock(), matcher=matcher)
                 for name, matcher in matchers.items()}
    names = list(matchers)
    elapsed = dict.fromkeys(names, 0.0)
    used = dict.fromkeys(names, 0.0)
    try:
        for n, batch in enumerate(batches):
            for name in names if (n + first) % 2 == 0 else names[::-1]:
                began, cpu = perf_counter(), process_time()
                results = await pipelines[name].ingest(batch, uow=SqlUnitOfWork(engines[name]))
                elapsed[name] += perf_counter() - began
                used[name] += process_time() - cpu
                if any(r.case_id is None for r in results):
                    raise RuntimeError("a mention was not stored")
    finally:
        for engine in engines.values():
            await engine.dispose()
    mentions = sum(len(b) for b in batches)
    return ({name: mentions / elapsed[name] for name in names},
            {name: used[name] / mentions * 1e6 for name in names})


def _detector_growth(texts: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(running.CONFIG)],
                          input=json.dumps(texts), capture_output=True, text=True,
                          check=True, cwd=running.ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: v / 1024 for k, v in result.items()}


async def measure(*, count: int, runs: int, log: Any = print) -> list[Figure]:
    """Measure both pipelines `runs` times over `count` mentions on both back ends."""
    team = load_team(running.CONFIG)
    exact = Matcher(team.brands, word_forms=False, languages=False)
    full = Matcher(team.brands, urgent=team.urgent_keywords, topics=team.topics,
                   places=team.places)
    for matcher in (exact, full):
        matcher.read("Kcell warms up", language=True)  # lingua loads its models once
    pg = stores.postgres_url()
    loads = os.getloadavg()
    rates: dict[str, list[float]] = {k: [] for k in ("sqlite_exact", "sqlite", "pg_exact", "pg")}
    cpu: dict[str, list[float]] = {k: [] for k in rates}
    with tempfile.TemporaryDirectory(prefix="socialcare-bench-") as directory:
        for run in range(runs):
            batches = ingest._corpus(count)
            for backend in ("sqlite", "pg"):
                matchers = {f"{backend}_exact": exact, backend: full}
                if backend == "sqlite":
                    urls = {}
                    for name in matchers:
                        (Path(directory) / name).mkdir(exist_ok=True)
                        urls[name] = stores.sqlite_url(Path(directory) / name)
                else:
                    urls = {f"{backend}_exact": pg, backend: stores.second_postgres_url()}
                for url in urls.values():
                    await stores.reset_database(url)
                # The two take turns batch by batch, so that both meet the machine's
                # neighbours alike; which one starts alternates run by run.
                rate, used = await _pair(urls, batches, matchers, first=run % 2)
                for name in matchers:
                    rates[name].append(rate[name])
                    cpu[name].append(used[name])
            log(f"  i. run {run + 1}/{runs}: " + ", ".join(
                f"{name} {values[-1]:,.0f}/s" for name, values in rates.items()))
    texts = [m.text for batch in ingest._corpus(1000) for m in batch]
    memory = _detector_growth(texts)
    figures = []
    load = os.getloadavg()[0]
    for backend, title in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        # Run by run: each pair ran back to back, on the same machine's state.
        ratios = [f / e for f, e in zip(rates[backend], rates[f"{backend}_exact"], strict=True)]
        figures.append(at_least(
            f"i. ingest with understanding ÷ exact-only, {title}", ratios, "×", TARGET_RATIO,
            note=f"median of {runs} pairs interleaved batch by batch, "
                 f"{min(ratios):.2f}–{max(ratios):.2f}×: "
                 f"word forms + language + topics + places "
                 f"{statistics.median(rates[backend]):,.0f} mentions/s, exact-only brands "
                 f"{statistics.median(rates[f'{backend}_exact']):,.0f}/s (medians); load "
                 f"average {loads[0]:.1f} at the start, {load:.1f} at the end",
            detail={"mentions": count, "rates": rates, "cpu_us": cpu, "ratios": ratios}))
        ratio = [e / f for f, e in zip(cpu[backend], cpu[f"{backend}_exact"], strict=True)]
        figures.append(at_least(
            f"i. ingest CPU a mention, exact-only ÷ with understanding, {title}", ratio, "×",
            note=f"this process's CPU time a mention (the database server's not counted), "
                 f"median: with understanding {statistics.median(cpu[backend]):.0f} µs, "
                 f"exact-only {statistics.median(cpu[f'{backend}_exact']):.0f} µs "
                 f"({min(ratio):.2f}–{max(ratio):.2f}×); steadier than the throughput on a "
                 f"shared machine"))
    figures.append(at_most(
        "i. language detector, RSS growth", [memory["after_kb"] - memory["before_kb"]], "MB",
        TARGET_DETECTOR_MB,
        note=f"fresh process: resident {memory['before_kb']:.0f} MB before reading 1,000 mentions, "
             f"{memory['after_kb']:.0f} MB after (lingua, ru/kk/en, low-accuracy mode)"))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.understanding",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 mentions, 2 runs")
    args = parser.parse_args()
    count, runs = (1_000, 3) if args.quick else (3_000, 5)
    figures = asyncio.run(measure(count=count, runs=runs,
                                  log=lambda line: print(line, file=sys.stderr)))
    print(render(figures))
    return 1 if any(f.met is False or f.value is None for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
