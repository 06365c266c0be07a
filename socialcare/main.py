"""The composition root and command line: builds everything from settings and runs it.

    socialcare run             serve HTTP, Slack and Telegram; run the SLA timers and cards
    socialcare ingest FILE     load mentions from JSON Lines (FILE or - for stdin)
    socialcare try-source NAME fetch a polled source once and print what it would collect
    socialcare check-config    run every start-up check, try the database and Redis
    socialcare db upgrade      apply the database migrations
    socialcare cases           print the open cases with their time left
    socialcare console link ID       print a one-time sign-in link to the web console
    socialcare console password ID   set a person's web-console password (read from stdin)
    socialcare console signout ID    end every web-console session of a person
    socialcare inbox list|retry ID|drop ID   the queued mentions set aside as dead letters
    socialcare demo            the whole app with a bundled team, sample mentions and agents

Each command imports what it needs in its own function, so that `--help` and the
quick commands start at once instead of loading Slack, Telegram, aiohttp and
matplotlib first: this module imports only the standard library at the top (held by
tests/unit/test_cli_imports.py; benchmark h measures the start).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from socialcare.roles import ALL_ROLES, Role

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp
    from telegram.ext import Application

    from socialcare.adapters.mail import SmtpMailer
    from socialcare.adapters.messengers.slack import SlackMessenger
    from socialcare.adapters.telemetry import Telemetry
    from socialcare.adapters.webhooks import SignedWebhookSender
    from socialcare.bot.dispatcher import Dispatcher
    from socialcare.bot.ports import Clock, Publisher
    from socialcare.bot.team import Source, Team
    from socialcare.deps import Deps
    from socialcare.settings import Settings
    from socialcare.storage.budgets import RedisRateBudgets

    TelegramApp = Application[Any, Any, Any, Any, Any, Any]

log = logging.getLogger("socialcare")

# What Telegram sends us: commands, replies and group messages; clicks; channel posts.
UPDATES = ["message", "callback_query", "channel_post"]
DEMO_PORT = 8080


@dataclass(frozen=True)
class App:
    """Everything `socialcare run` runs: the handlers' parts and the messengers' apps."""

    deps: Deps
    dispatcher: Dispatcher
    bolt: AsyncApp | None = None
    telegram: TelegramApp | None = None


@asynccontextmanager
async def runtime(settings: Settings, *, clock: Clock | None = None,
                  roles: frozenset[Role] = ALL_ROLES,
                  extra_publishers: Mapping[str, Publisher] | None = None) -> AsyncIterator[App]:
    """Build the app's parts from settings, migrate the database, and close all at the end.

    `extra_publishers` publish replies for sources by name (the demo keeps them locally)."""
    import aiohttp

    from socialcare import preflight
    from socialcare.adapters.clock import SystemClock
    from socialcare.adapters.collectors import kinds
    from socialcare.adapters.messengers.telegram import TelegramMessenger
    from socialcare.adapters.telemetry import Telemetry
    from socialcare.bot.dispatcher import BOOK_AHEAD, Dispatcher
    from socialcare.bot.pipeline import Pipeline
    from socialcare.bot.ports import Messenger
    from socialcare.console import routes as console
    from socialcare.deps import Deps
    from socialcare.handlers import slack as slack_handlers
    from socialcare.handlers import telegram as telegram_handlers
    from socialcare.settings import ConfigError, environment, load_catalog, load_team
    from socialcare.storage import redis as redis_store
    from socialcare.storage.budgets import RedisRateBudgets
    from socialcare.storage.engine import create_engine, upgrade_if_behind
    from socialcare.storage.queue import IngestQueue
    from socialcare.storage.tokens import SqlTokenStore

    limit_malloc_arenas()
    team = load_team(settings.config_file)
    environ = environment()
    problems = preflight.problems(settings, team, environ=environ)
    if problems:
        raise ConfigError(*problems)
    catalog = load_catalog(team.language)
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.async_database_url)
        stack.push_async_callback(engine.dispose)
        await upgrade_if_behind(engine)
        redis = redis_store.connect(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        if settings.redis_url is not None:
            # Unreachable at start is a wrong setting; an outage later is waited out.
            await preflight.check_redis(redis, settings.redis_url)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        publishers = _publishers(settings, team.sources, session)
        telemetry = Telemetry()
        budgets = RedisRateBudgets(redis)
        messengers: dict[str, Messenger] = {}
        bolt = telegram = None
        card_messengers: dict[str, Messenger] = {}
        if settings.slack_bot_token is not None:
            bolt, card_messengers["slack"], messengers["slack"] = _slack(
                settings, telemetry, budgets)
        # The dispatcher takes every card's call from the budgets before making it.
        if settings.telegram_bot_token is not None:
            telegram = _telegram(settings, budgets)
            messengers["telegram"] = TelegramMessenger(
                telegram.bot, observe=telemetry.messenger_call)
            card_messengers["telegram"] = TelegramMessenger(
                telegram.bot, observe=telemetry.messenger_call, budget_taken=True)
        try:
            collecting = kinds.build(
                team, session=session, clock=clock, environ=environ,
                telegram_bot=telegram.bot if telegram is not None else None,
                team_chats=team.own_chats("telegram"), tokens=SqlTokenStore(engine))
        except ValueError as error:
            raise ConfigError(str(error)) from None
        publishers |= collecting.publishers
        publishers |= extra_publishers or {}
        deps = Deps(
            settings=settings, team=team, catalog=catalog, clock=clock, engine=engine,
            redis=redis, pipeline=Pipeline(team, clock=clock), telemetry=telemetry,
            messengers=messengers, publishers=publishers, collectors=collecting,
            webhooks=_webhooks(settings, session), roles=roles,
            queue=IngestQueue(engine, redis), mailer=_mailer(settings),
            announcement_webhooks=_announcement_webhooks(settings, session),
        )
        if bolt is not None:
            # Stopping, the work of requests already acknowledged ends before the
            # database, Redis and the HTTP session close (Slack sends none of them again).
            stack.push_async_callback(slack_handlers.register(bolt, deps).wait)
        if telegram is not None:
            telegram_handlers.register(telegram, deps)
        dispatcher = Dispatcher(
            team, catalog, uow=deps.background_uow, clock=clock, messengers=card_messengers,
            budgets=budgets, can_publish=lambda source: source in publishers,
            escalation_url=lambda escalation_id: console.escalation_url(deps, escalation_id),
            book_ahead=BOOK_AHEAD,
        )
        yield App(deps=deps, dispatcher=dispatcher, bolt=bolt, telegram=telegram)


def _publishers(
    settings: Settings, sources: Sequence[Source], session: aiohttp.ClientSession
) -> dict[str, Publisher]:
    from socialcare.adapters.collectors.webhook_reply import WebhookReplyPublisher, can_publish

    publishing = [source for source in sources if can_publish(source)]
    # Without the secret preflight has refused to start.
    if not publishing or settings.ingest_webhook_secret is None:
        return {}
    publisher = WebhookReplyPublisher(session, settings.ingest_webhook_secret.get_secret_value())
    return {source.name: publisher for source in publishing}


def _webhooks(settings: Settings, session: aiohttp.ClientSession) -> SignedWebhookSender | None:
    from socialcare.adapters.webhooks import SignedWebhookSender

    if settings.handoff_webhook_secret is None:
        return None
    return SignedWebhookSender(session, settings.handoff_webhook_secret.get_secret_value())


def _mailer(settings: Settings) -> SmtpMailer | None:
    from socialcare.adapters.mail import SmtpMailer

    if settings.smtp_url is None or not settings.smtp_from:
        return None  # preflight refused a config that mails without them
    return SmtpMailer(settings.smtp_url.get_secret_value(), settings.smtp_from,
                      ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)


def _announcement_webhooks(
    settings: Settings, session: aiohttp.ClientSession
) -> SignedWebhookSender | None:
    from socialcare.adapters.webhooks import SignedWebhookSender

    secret = settings.announcement_webhook_secret
    return None if secret is None else SignedWebhookSender(session, secret.get_secret_value())


def _slack(settings: Settings, telemetry: Telemetry, budgets: RedisRateBudgets
           ) -> tuple[AsyncApp, SlackMessenger, SlackMessenger]:
    """Return the Slack app, the messenger of cards (the dispatcher takes their slots)
    and the messenger of everything else (notes and files wait for their slots)."""
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
        AsyncServerErrorRetryHandler,
    )
    from slack_sdk.web.async_client import AsyncWebClient

    from socialcare.adapters.messengers.slack import SlackMessenger

    assert settings.slack_bot_token is not None
    token = settings.slack_bot_token.get_secret_value()
    base_url = str(settings.slack_api_url)
    # Clicks and commands: retry a 429 or a 5xx inside the call, the person is waiting.
    interactive = AsyncWebClient(token=token, base_url=base_url, retry_handlers=[
        AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ])
    bolt = AsyncApp(
        client=interactive,
        signing_secret=(settings.slack_signing_secret.get_secret_value()
                        if settings.slack_signing_secret else None),
        request_verification_enabled=settings.slack_app_token is None,
    )
    # Cards: no retry inside the call. A 429 comes straight back, so the dispatcher
    # holds the channel instead of waiting; and a post whose answer was lost is not
    # sent again blindly (the SDK's connection-error retry would post a second card):
    # the dispatcher first looks for it by its case id.
    cards_client = AsyncWebClient(token=token, base_url=base_url, timeout=15, retry_handlers=[])
    return (bolt, SlackMessenger(cards_client, observe=telemetry.messenger_call),
            SlackMessenger(cards_client, observe=telemetry.messenger_call, budgets=budgets))


def _telegram(settings: Settings, budgets: RedisRateBudgets) -> TelegramApp:
    from telegram.ext import ApplicationBuilder

    from socialcare.adapters.messengers.telegram_budget import SharedBudgets

    assert settings.telegram_bot_token is not None
    base_url = str(settings.telegram_api_url)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(base_url)
        .base_file_url(base_url.removesuffix("bot") + "file/bot")
        # Every message to a chat takes the chat's budget shared with the cards.
        .rate_limiter(SharedBudgets(budgets))
    )
    if settings.telegram_webhook_url is not None:
        builder = builder.updater(None)
    return builder.build()


def build_app(app: App, *, with_timers: bool = True) -> web.Application:
    """Build the HTTP app with the routes and loops of the process's roles.

    Every process answers /healthz and /metrics. Collectors take /ingest and /meta and
    poll the sources; messengers take Slack's and Telegram's requests and keep the
    cards; the scheduler fires timers; workers read the ingest queue."""
    from aiohttp import web

    from socialcare.console import routes as console
    from socialcare.handlers import (
        announcing,
        cards,
        collectors,
        handoff,
        health,
        ingest,
        scheduler,
        wakeups,
        workers,
    )
    from socialcare.handlers import slack as slack_handlers
    from socialcare.handlers import telegram as telegram_handlers

    deps = app.deps
    roles = deps.roles
    web_app = web.Application(client_max_size=ingest.MAX_BODY)
    health.register(web_app, deps)
    if Role.COLLECTORS in roles:
        ingest.register(web_app, deps)
    if Role.MESSENGERS in roles:
        handoff.register(web_app, deps)
        console.register(web_app, deps)
        signing_secret = deps.settings.slack_signing_secret
        if app.bolt is not None and deps.settings.slack_app_token is None \
                and signing_secret is not None:
            slack_handlers.http_route(web_app, app.bolt, signing_secret.get_secret_value(),
                                      deps.foreground)
        if app.telegram is not None:
            secret = deps.settings.telegram_webhook_secret
            if deps.settings.telegram_webhook_url is not None and secret is not None:
                telegram_handlers.webhook_route(web_app, app.telegram, secret.get_secret_value())
            web_app.cleanup_ctx.append(_run_telegram(app.telegram, deps))
        if app.bolt is not None and deps.settings.slack_app_token is not None:
            web_app.cleanup_ctx.append(_run_socket_mode(app.bolt, deps))
        if deps.messengers:
            cards.register(web_app, app.dispatcher, deps)
        if with_timers:
            announcing.register(web_app, deps)
    if with_timers and Role.SCHEDULER in roles:
        scheduler.register(web_app, deps)
    if with_timers and Role.COLLECTORS in roles:
        collectors.register(web_app, deps)
    if Role.WORKERS in roles:
        workers.register(web_app, deps, claim_seconds=deps.settings.ingest_claim_seconds)
    wakeups.register(web_app, deps)
    return web_app


def _run_telegram(
    application: TelegramApp, deps: Deps
) -> Callable[[web.Application], AsyncIterator[None]]:
    from telegram import BotCommand

    from socialcare.adapters.messengers.telegram_budget import SharedBudgets
    from socialcare.handlers import commands

    async def run(_web_app: web.Application) -> AsyncIterator[None]:
        await application.initialize()
        await application.bot.set_my_commands([
            BotCommand(name, deps.catalog(f"telegram.command.{name}"))
            for name in commands.COMMANDS
        ])
        settings = deps.settings
        if settings.telegram_webhook_url is not None:
            secret = settings.telegram_webhook_secret
            assert secret is not None
            await application.bot.set_webhook(
                url=str(settings.telegram_webhook_url), secret_token=secret.get_secret_value(),
                allowed_updates=UPDATES,
            )
        await application.start()
        if application.updater is not None:
            await application.updater.start_polling(allowed_updates=UPDATES)
        log.info("Telegram bot @%s is up (%s)", application.bot.username,
                 "webhook" if application.updater is None else "polling")
        yield
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if isinstance(application.bot.rate_limiter, SharedBudgets):
            application.bot.rate_limiter.stop_waiting()
        await application.stop()
        await application.shutdown()

    return run


def _run_socket_mode(
    bolt: AsyncApp, deps: Deps
) -> Callable[[web.Application], AsyncIterator[None]]:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    async def run(_web_app: web.Application) -> AsyncIterator[None]:
        token = deps.settings.slack_app_token
        assert token is not None
        handler = AsyncSocketModeHandler(bolt, token.get_secret_value(), web_client=bolt.client)
        await handler.connect_async()
        log.info("Slack is up over Socket Mode")
        yield
        await handler.close_async()

    return run


class CannotListen(Exception):
    """The HTTP server could not bind its address."""

    def __init__(self, host: str, port: int, error: OSError) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {error.strerror}")


# The collector's thresholds while serving (Python's are 700, 10, 10): a young
# collection per 2,000 new container objects instead of 700. Requests allocate many
# short-lived objects; fewer young collections cost less in all, and a middle one
# still walks at most ~20,000 objects (larger thresholds made those stall 100+ ms).
GC_THRESHOLDS = (2_000, 10, 10)


# glibc's malloc gives each thread that allocates under contention an arena of its own
# (up to eight per core); the database driver's and the executor's threads then keep
# megabytes each. Two are enough for a process whose work is on one event loop.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX would), before threads start."""
    import ctypes
    import ctypes.util

    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        return


# How long a thread may hold the interpreter while another waits for it (Python's
# default: 5 ms). Feed parsing, charts and CSV run in worker threads; each time the
# event loop wakes it waits for the lock, up to this long, before a timer or an ack
# can run. Measured (benchmark j, 16 MB feed, load ~8 on 2 cores): loop lag p99
# 62-76 ms at 5 ms, 25-31 ms at 1 ms, the parse as fast.
SWITCH_INTERVAL = 0.001


def share_the_interpreter() -> None:
    """Let the event loop take the interpreter back from a busy worker thread within
    `SWITCH_INTERVAL`, instead of Python's 5 ms."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle_memory() -> None:
    """Once the process has started: collect what start-up left, then freeze the rest
    (modules, settings, the team, compiled statements) out of the collector's sight,
    so that no later collection walks it again — with ~200,000 such objects a full
    collection stalled every request in flight for a few hundred milliseconds."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(app: App, *, host: str, port: int,
                extend: Callable[[web.Application], None] | None = None,
                ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve HTTP, the messengers and the timers until SIGINT or SIGTERM.

    `extend` adds to the HTTP app before it starts; `ready` runs once it listens."""
    from aiohttp import web

    from socialcare.console import access

    deps = app.deps
    # A taken port stops the process before any loop (started by the runner's setup)
    # has done any work: try the address first, as the site will bind it.
    await _check_address(host, port)
    web_app = build_app(app)
    if extend is not None:
        extend(web_app)
    runner = web.AppRunner(web_app, access_log=None)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:  # taken in the moment since the check
            raise CannotListen(host, port, error) from error
        roles = "all" if deps.roles == ALL_ROLES else "+".join(sorted(deps.roles))
        address = access.local_address(host, port)
        log.info("socialcare is up on %s as %s (database: %s, redis: %s)", address, roles,
                 _redacted(deps.settings.async_database_url),
                 "server" if deps.settings.redis_url else "in-process")
        if Role.MESSENGERS in deps.roles:
            console = access.console_url(deps) or address
            chat = ", or /console in Slack or Telegram" if deps.messengers else ""
            log.info("web console: %s/ — sign in with a one-time link from `socialcare "
                     "console link PERSON-ID`%s; or with a password set by `socialcare "
                     "console password PERSON-ID`", console, chat)
        if not deps.messengers:
            log.info("no messenger configured: collecting, tracking SLAs and logging only")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        settle_memory()
        share_the_interpreter()
        if ready is not None:
            await ready()
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


async def _check_address(host: str, port: int) -> None:
    """Raise CannotListen if the server could not bind `host:port` (every address of it)."""
    try:
        probe = await asyncio.get_running_loop().create_server(
            asyncio.Protocol, host, port, reuse_address=True, start_serving=False)
    except OSError as error:
        raise CannotListen(host, port, error) from error
    probe.close()
    await probe.wait_closed()


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def check_config(out: TextIO, err: TextIO) -> int:
    """Run every check that start-up runs and try the database and Redis; print each
    problem on a line of its own. Return 0 when `run` would start."""
    from socialcare import preflight
    from socialcare.settings import ConfigError, environment, load_team, read_settings

    # A wrong variable is named and stands at its default for the other checks.
    settings, problems, wrong_variables = read_settings()
    team: Team | None = None
    try:
        team = load_team(settings.config_file)
    except ConfigError as error:
        problems += error.problems
    if team is not None:
        problems += preflight.problems(settings, team, environ=environment())
    wrong = len(problems)
    problems += await preflight.unreachable(settings, skip=wrong_variables)
    for problem in problems:
        print(f"socialcare: {problem}", file=err)
    if problems:
        return 2 if wrong else 1
    assert team is not None
    print(f"{settings.config_file}: ok — {len(team.brands)} brand(s), {len(team.sources)} "
          f"source(s), {len(team.channels)} channel(s), {len(team.people)} people, "
          f"timezone {team.timezone}", file=out)
    messengers = [name for name, token in (("Slack", settings.slack_bot_token),
                                           ("Telegram", settings.telegram_bot_token)) if token]
    print(f"environment: ok — messengers: {', '.join(messengers) or 'none'}", file=out)
    print(f"database: answers at {_redacted(settings.async_database_url)}", file=out)
    print("redis: " + (f"answers at {preflight.redacted_redis(settings.redis_url)}"
                       if settings.redis_url else "in-process (REDIS_URL is not set)"), file=out)
    return 0


async def db_upgrade(settings: Settings, out: TextIO) -> int:
    """Apply the migrations."""
    from socialcare.storage.engine import create_engine, upgrade

    engine = create_engine(settings.async_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database is up to date: {_redacted(settings.async_database_url)}", file=out)
    return 0


async def open_cases(settings: Settings, out: TextIO, *, limit: int) -> int:
    """Print the open cases. Only the database is read: no Redis, messengers or sources.

    A SQLite file at the latest migration is read with the standard library, without
    loading SQLAlchemy (most of the command's start); any other database through the
    engine, which migrates a new or behind one first."""
    from socialcare.adapters.clock import SystemClock
    from socialcare.handlers.terminal import OpenCases, print_cases, read_open_cases
    from socialcare.settings import load_team
    from socialcare.storage.sqlite_reader import SqliteReader

    team = load_team(settings.config_file, check_sources=False)
    clock = SystemClock()
    reader = SqliteReader.at_latest(settings.database_url)
    if reader is not None:
        with reader:
            listed = reader.list_open(limit=limit)
            found = OpenCases(listed, sum(reader.count_open().values()),
                              reader.first_of([c.id for c in listed if c.id is not None]))
        return print_cases(found, team=team, now=clock.now(), out=out, limit=limit)
    from socialcare.storage.engine import create_engine, upgrade_if_behind
    from socialcare.storage.repositories import SqlCaseRepository, SqlMentionRepository

    engine = create_engine(settings.async_database_url)
    try:
        await upgrade_if_behind(engine)
        async with engine.connect() as conn:
            found = await read_open_cases(SqlCaseRepository(conn), SqlMentionRepository(conn),
                                          limit=limit)
    finally:
        await engine.dispose()
    return print_cases(found, team=team, now=clock.now(), out=out, limit=limit)


async def demo(out: TextIO, *, port: int = DEMO_PORT, speed: float = 1.0,
               agents: bool = True, data_dir: Path | None = None,
               seed: int | None = None) -> int:
    """Run the demo until SIGINT or SIGTERM: the bundled team on a fresh embedded database,
    the sample mentions arriving `speed` times faster than written, simulated agents."""
    from socialcare.adapters.clock import SystemClock
    from socialcare.demo import show as demo_show

    settings = demo_show.demo_settings(port=port, data_dir=data_dir or demo_show.DATA_DIR)
    demo_show.reset(settings)
    clock = SystemClock()
    async with runtime(settings, clock=clock,
                       extra_publishers=demo_show.publishers(settings, clock)) as app:
        stage = demo_show.Demo(app.deps, speed=speed, agents=agents, out=out, seed=seed)
        try:
            await serve(app, host=settings.http_host, port=settings.http_port,
                        extend=stage.register, ready=stage.welcome)
        except CannotListen as error:
            print(f"socialcare demo: {error}; choose another port with --port",
                  file=sys.stderr)
            return 1
    return 0


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0, at most 1000")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, at least 1")
    return value


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
    run.add_argument("--role", action="append", choices=["all", *(r.value for r in Role)],
                     dest="roles",
                     help="what this process does (repeatable; default all): collectors "
                          "poll and take pushed mentions, workers ingest them, messengers "
                          "serve Slack and Telegram, scheduler fires the timers")
    feed = commands.add_parser(
        "ingest", help="load mentions from a JSON Lines file",
        description="Load mentions, one JSON object a line, in the format of POST /ingest. "
                    "Every line is checked first: one bad line and nothing is stored.",
    )
    feed.add_argument("file", help="path to a .jsonl file, or - for stdin")
    trial = commands.add_parser(
        "try-source", help="fetch a polled source once and print what it would collect",
        description="Fetch a polled source (an html page, a feed, an API) once, as its "
                    "first poll would, and print every item it finds; nothing is stored. "
                    "Disabled sources can be tried too.")
    trial.add_argument("name", help="the source's name in the config's [[sources]]")
    commands.add_parser(
        "check-config", help="check the environment and the config file",
        description="Run every check that `socialcare run` runs at start and try the "
                    "database and Redis; print each problem on a line of its own. Exits 0 "
                    "when run would start.")
    db = commands.add_parser("db", help="database maintenance", description="Database "
                             "maintenance.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_commands.add_parser("upgrade", help="apply the migrations (also done at start)",
                           description="Apply the Alembic migrations up to the latest.")
    cases = commands.add_parser("cases", help="print the open cases with their time left",
                                description="Print the open cases, earliest deadline first "
                                            "(urgent ones first among equal deadlines).")
    cases.add_argument("--limit", type=_count, default=200,
                       help="at most this many (default 200)")
    console_parser = commands.add_parser(
        "console", help="web console administration",
        description="Web console administration. People sign in with a one-time link (from "
                    "`console link` here, or /console in Slack or Telegram) or with a "
                    "password set here.")
    console_commands = console_parser.add_subparsers(dest="console_command", required=True,
                                                     metavar="COMMAND")
    link = console_commands.add_parser(
        "link", help="print a one-time sign-in link for a person",
        description="Print a one-time link that signs a person of the roster in to the web "
                    "console (15 minutes, one use): for the machine's owner, before any "
                    "messenger is set up. It points at CONSOLE_URL, or at HTTP_HOST and "
                    "HTTP_PORT when that is not set.")
    link.add_argument("person", help="the person's id in the config's [[people]]")
    password = console_commands.add_parser(
        "password", help="set a person's console password (read from stdin)",
        description="Set the console password of a person of the roster. The password is "
                    "read from stdin (asked twice on a terminal); only a salted scrypt hash "
                    "is stored.")
    password.add_argument("person", help="the person's id in the config's [[people]]")
    signout = console_commands.add_parser(
        "signout", help="end every console session of a person (a lost phone)",
        description="End every web-console session of a person of the roster: each of "
                    "their browsers is asked to sign in again.")
    signout.add_argument("person", help="the person's id in the config's [[people]]")
    inbox = commands.add_parser(
        "inbox", help="queued mentions that could not be stored (dead letters)",
        description="Queued mentions the workers could not store after several tries are "
                    "set aside as dead letters, and the team is alerted once. List them, "
                    "store one again (after a fix), or delete one for good.")
    inbox_commands = inbox.add_subparsers(dest="inbox_command", required=True,
                                          metavar="COMMAND")
    inbox_commands.add_parser("list", help="list the dead letters with their reason and tries",
                              description="List the dead letters: source, external id, "
                                          "tries, when set aside and the last reason; and "
                                          "the queued mentions waiting for a worker that "
                                          "knows their source.")
    for name, what in (("retry", "store a dead letter now (it leaves the list if stored)"),
                       ("drop", "delete a dead letter for good")):
        command = inbox_commands.add_parser(name, help=what, description=what[0].upper()
                                            + what[1:] + ".")
        command.add_argument("id", type=int, help="the dead letter's id (from inbox list)")
    show = commands.add_parser(
        "demo", help="run a demo: a bundled team, sample mentions and simulated agents",
        description="Start everything on the embedded default with a bundled team and "
                    "sample mentions (Russian, Kazakh, English; social networks, forums, "
                    "news) arriving over a few minutes, worked by simulated agents; print "
                    "the web console's address and how to sign in. The database "
                    "(data/demo.db) is new at every start; the environment is not read and "
                    "no network is touched. Ctrl-C stops it.")
    show.add_argument("--port", type=int, default=DEMO_PORT,
                      help=f"listen port on 127.0.0.1 (default {DEMO_PORT})")
    show.add_argument("--speed", type=_speed, default=1.0,
                      help="how many times faster the sample arrives and the agents work "
                           "(default 1; SLA clocks keep real time)")
    show.add_argument("--agents", action=argparse.BooleanOptionalAction, default=True,
                      help="simulated agents work the cases (default: on)")
    return parser


async def _main(args: argparse.Namespace) -> int:
    from socialcare.preflight import Unreachable, database_unreachable
    from socialcare.settings import ConfigError, load_settings
    from socialcare.storage.revisions import UnknownSchema

    if args.command == "demo":  # reads no environment
        return await demo(sys.stdout, port=args.port, speed=args.speed, agents=args.agents)
    if args.command == "check-config":
        return await check_config(sys.stdout, sys.stderr)
    settings = load_settings()
    if args.command == "try-source":  # the network, not the database
        return await _try_source(settings, args.name)
    try:
        return await _command(args, settings)
    except UnknownSchema as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None
    except Exception as error:
        if not _unanswered(error):
            raise
        raise Unreachable(database_unreachable(settings, error)) from error


def _unanswered(error: Exception) -> bool:
    """Tell whether an error says the database did not answer (or could not be read)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError  # only now: `cases` on SQLite runs without it

    return isinstance(error, OSError | sqlite3.Error | DBAPIError)


async def _try_source(settings: Settings, name: str) -> int:
    from socialcare.handlers.try_source import try_source
    from socialcare.settings import environment, load_team

    return await try_source(load_team(settings.config_file, enabled_only=False), name,
                            environ=environment(), out=sys.stdout, err=sys.stderr,
                            database_url=settings.async_database_url)


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if args.command == "db":
        return await db_upgrade(settings, out)
    if args.command == "cases":
        return await open_cases(settings, out, limit=args.limit)
    roles = ALL_ROLES if args.command != "run" or not args.roles or "all" in args.roles \
        else frozenset(Role(role) for role in args.roles)
    if roles != ALL_ROLES and settings.redis_url is None:
        print("socialcare: --role needs REDIS_URL: processes with different roles share "
              "the ingest queue, leases and rate budgets through Redis", file=sys.stderr)
        return 2
    async with runtime(settings, roles=roles) as app:
        deps = app.deps
        if args.command == "run":
            await serve(app, host=args.host or settings.http_host,
                        port=args.port if args.port is not None else settings.http_port)
            return 0
        if args.command == "inbox":
            from socialcare.handlers import inbox_admin

            if args.inbox_command == "list":
                return await inbox_admin.list_letters(deps, out)
            if args.inbox_command == "retry":
                return await inbox_admin.retry(deps, args.id, out)
            return await inbox_admin.drop(deps, args.id, out)
        if args.command == "console":
            from socialcare.console import admin as console_admin

            if args.console_command == "link":
                return await console_admin.print_link(deps, args.person, out)
            if args.console_command == "signout":
                return await console_admin.sign_out_everywhere(deps, args.person, out)
            return await console_admin.set_password(deps, args.person, sys.stdin, out)
        from socialcare.handlers import terminal

        if args.file == "-":
            return await terminal.ingest_file(deps, sys.stdin, out)
        try:
            text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"socialcare ingest: {args.file}: {error}", file=sys.stderr)
            return 2
        return await terminal.ingest_file(deps, text.splitlines(), out)


def cli(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from socialcare.preflight import Unreachable
    from socialcare.settings import ConfigError

    try:
        return asyncio.run(_main(args))
    except ConfigError as error:
        for problem in error.problems:
            print(f"socialcare: {problem}", file=sys.stderr)
        return 2
    except CannotListen as error:
        print(f"socialcare: {error} (--port or HTTP_PORT sets another)", file=sys.stderr)
        return 1
    except Unreachable as error:
        print(f"socialcare: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(cli())
