"""The composition root and command line: builds everything from settings and runs it.

    socialcare run             serve /ingest, /healthz, /metrics and run the SLA timers
    socialcare ingest FILE     load mentions from JSON Lines (FILE or - for stdin)
    socialcare check-config    check the environment and the config file
    socialcare db upgrade      apply the database migrations
    socialcare cases           print the open cases with their time left
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from socialcare.adapters.clock import SystemClock
from socialcare.adapters.collectors.mention_json import parse_lines
from socialcare.adapters.telemetry import Telemetry
from socialcare.bot import sla
from socialcare.bot.model import Case
from socialcare.bot.pipeline import Outcome, Pipeline
from socialcare.bot.ports import Clock
from socialcare.deps import Deps
from socialcare.handlers import health, ingest, scheduler
from socialcare.settings import ConfigError, Settings, load_settings, load_team
from socialcare.storage import redis as redis_store
from socialcare.storage.database import create_engine, upgrade

log = logging.getLogger("socialcare")

INGEST_BATCH = 500


@asynccontextmanager
async def runtime(settings: Settings, *, clock: Clock | None = None) -> AsyncIterator[Deps]:
    """Build the app's parts from settings, migrate the database, and close all at the end."""
    team = load_team(settings.config_file)
    engine = create_engine(settings.async_database_url)
    try:
        await upgrade(engine)
        redis = redis_store.connect(settings.redis_url)
        try:
            clock = clock or SystemClock()
            yield Deps(
                settings=settings,
                team=team,
                clock=clock,
                engine=engine,
                redis=redis,
                pipeline=Pipeline(team, clock=clock),
                telemetry=Telemetry(),
            )
        finally:
            await redis.aclose()
    finally:
        await engine.dispose()


def build_app(deps: Deps, *, with_timers: bool = True) -> web.Application:
    """Build the HTTP app; handlers register in this order."""
    app = web.Application(client_max_size=ingest.MAX_BODY)
    health.register(app, deps)
    ingest.register(app, deps)
    if with_timers:
        scheduler.register(app, deps)
    return app


async def serve(deps: Deps, *, host: str, port: int) -> None:
    """Serve HTTP and run the timers until SIGINT or SIGTERM."""
    runner = web.AppRunner(build_app(deps), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("socialcare is up on http://%s:%d (database: %s, redis: %s)",
                 host, port, _redacted(deps.settings.async_database_url),
                 "server" if deps.settings.redis_url else "in-process")
        if not (deps.settings.slack_bot_token or deps.settings.telegram_bot_token):
            log.info("no messenger configured: collecting, tracking SLAs and logging only")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def ingest_file(deps: Deps, stream: Iterable[str], out: TextIO) -> int:
    """Load JSON Lines mentions; nothing is stored if any line is bad. Return an exit code."""
    raws, problems = parse_lines(stream, sources={s.name for s in deps.team.sources})
    if problems:
        for problem in problems[:20]:
            print(problem, file=out)
        if len(problems) > 20:
            print(f"… and {len(problems) - 20} more", file=out)
        print("nothing was stored: fix the lines above and run again", file=out)
        return 2
    totals: dict[str, int] = {}
    for start in range(0, len(raws), INGEST_BATCH):
        batch = raws[start:start + INGEST_BATCH]
        for raw, result in zip(
            batch, await deps.pipeline.ingest(batch, uow=deps.uow()), strict=True
        ):
            label = result.outcome.value
            if result.outcome is Outcome.DROPPED and result.reason is not None:
                label = f"dropped ({result.reason.value})"
            totals[label] = totals.get(label, 0) + 1
            deps.telemetry.mentions.labels(
                raw.source, result.outcome.value, result.reason.value if result.reason else ""
            ).inc()
    summary = ", ".join(f"{count} {label}" for label, count in sorted(totals.items()))
    print(f"{len(raws)} mention(s): {summary or 'none'}", file=out)
    return 0


def _time_left(case: Case, deps: Deps) -> str:
    left = sla.time_left(case, deps.clock.now())
    if left is None:
        return case.state.value
    minutes = int(abs(left) / timedelta(minutes=1))
    return f"{minutes} min left" if left >= timedelta(0) else f"overdue {minutes} min"


async def print_cases(deps: Deps, out: TextIO, *, limit: int) -> int:
    """Print the open cases, earliest deadline first."""
    async with deps.uow() as uow:
        cases = await uow.cases.list_open(limit=limit)
        firsts = await uow.mentions.first_of([c.id for c in cases if c.id is not None])
    if not cases:
        print("no open cases", file=out)
        return 0
    zone = deps.team.zone
    rows = [("#", "state", "tier", "platform", "brand", "due", "time left", "holder", "author",
             "text")]
    for case in cases:
        first = firsts.get(case.id) if case.id is not None else None
        due = case.response_due_at.astimezone(zone).strftime("%d.%m %H:%M") \
            if case.response_due_at else "-"
        author = (first.author.handle or first.author.name or "-") if first else "-"
        text = " ".join((first.text if first else "").split())
        rows.append((
            str(case.id), case.state.value, case.tier.value, case.platform, case.brand, due,
            _time_left(case, deps), case.claimed_by or "-", author[:24],
            text[:50] + ("…" if len(text) > 50 else ""),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip(), file=out)
    print(f"({len(cases)} open, times in {deps.team.timezone})", file=out)
    return 0


async def check_config(settings: Settings, out: TextIO) -> int:
    """Load the config file and report what it holds."""
    team = load_team(settings.config_file)
    print(f"{settings.config_file}: ok — {len(team.brands)} brand(s), {len(team.sources)} "
          f"source(s), {len(team.channels)} channel(s), {len(team.people)} people, "
          f"timezone {team.timezone}", file=out)
    return 0


async def db_upgrade(settings: Settings, out: TextIO) -> int:
    """Apply the migrations."""
    engine = create_engine(settings.async_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database is up to date: {_redacted(settings.async_database_url)}", file=out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socialcare",
        description="Chat-ops bot for social-media customer care.",
        epilog="Settings come from the environment (and .env); the team's config from "
               "CONFIG_FILE (default socialcare.toml).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="serve the HTTP routes and run the SLA timers",
                              description="Serve /ingest, /healthz and /metrics and run the "
                                          "SLA timers until stopped (Ctrl-C).")
    run.add_argument("--host", help="listen address (default: HTTP_HOST or 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default: HTTP_PORT or 8080)")
    feed = commands.add_parser(
        "ingest", help="load mentions from a JSON Lines file",
        description="Load mentions, one JSON object a line, in the format of POST /ingest. "
                    "Every line is checked first: one bad line and nothing is stored.",
    )
    feed.add_argument("file", help="path to a .jsonl file, or - for stdin")
    commands.add_parser("check-config", help="check the environment and the config file",
                        description="Check the environment and the config file; name any "
                                    "wrong key.")
    db = commands.add_parser("db", help="database maintenance", description="Database "
                             "maintenance.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_commands.add_parser("upgrade", help="apply the migrations (also done at start)",
                           description="Apply the Alembic migrations up to the latest.")
    cases = commands.add_parser("cases", help="print the open cases with their time left",
                                description="Print the open cases, earliest deadline first.")
    cases.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    return parser


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if args.command == "check-config":
        return await check_config(settings, out)
    if args.command == "db":
        return await db_upgrade(settings, out)
    async with runtime(settings) as deps:
        if args.command == "run":
            await serve(deps, host=args.host or settings.http_host,
                        port=args.port if args.port is not None else settings.http_port)
            return 0
        if args.command == "ingest":
            if args.file == "-":
                return await ingest_file(deps, sys.stdin, out)
            try:
                text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                print(f"socialcare ingest: {args.file}: {error}", file=sys.stderr)
                return 2
            return await ingest_file(deps, text.splitlines(), out)
        return await print_cases(deps, out, limit=args.limit)


def cli(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        return asyncio.run(_main(args, settings))
    except ConfigError as error:
        print(f"socialcare: {error}", file=sys.stderr)
        return 2
    except (OSError, DBAPIError) as error:
        reason = error.orig if isinstance(error, DBAPIError) else error
        print(f"socialcare: cannot reach the database at "
              f"{_redacted(settings.async_database_url)}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(cli())
