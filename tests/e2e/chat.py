"""The whole app with Slack and Telegram: real slack-bolt, slack_sdk and
python-telegram-bot against the fake servers in tests/fakes."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from socialcare.adapters.collectors.signature import sign, verify
from socialcare.bot import timers
from socialcare.deps import Deps
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from tests.conftest import (
    ROOT,
    TEST_REDIS_URL,
    FakeClock,
    database_url,
    reset_database,
    write_config,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, make_user

log = logging.getLogger(__name__)

# An e2e test still running after this long is stuck: fail it, showing every task.
STUCK_AFTER = 200.0
# How long a task still ending when the app has stopped is waited for, before it is
# taken for one that outlives the app (and again, once cancelled, for it to end).
OUTLIVE_GRACE = 2.0

SECRET = "ingest-secret-for-chat-tests"
HANDOFF_SECRET = "handoff-secret-for-chat-tests"
TELEGRAM_SECRET = "telegram-webhook-secret_42"
SLACK_CHANNEL = "C0123456789"
TELEGRAM_CHAT = -1001234567890
# The roster of config.example.toml.
AIGERIM_SLACK, AIGERIM_TG = "U0AGENT001", make_user(100000001, "Aigerim", username="aigerim")
DANIYAR_TG = make_user(100000002, "Daniyar", username="daniyar")
SAULE_SLACK, SAULE_TG = "U0LEAD0001", make_user(100000003, "Saule", username="saule")
STRANGER_SLACK, STRANGER_TG = "U0STRANGER", make_user(555, "Stranger", username="stranger")
NURLAN_SLACK = "U0DIRECT01"  # a director known only in Slack
ASKAR_TG = make_user(100000005, "Askar", username="askar")  # a director only in Telegram
GULNARA_SLACK = "U0BILLING1"  # of the billing team (second line)
BILLING_CHANNEL = "C0BILLING0"
CALLBACK_CHAT = -1009876543210  # the call centre's Telegram group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Wait until `check()` is truthy (or stops raising AssertionError, or LookupError:
    the card it looks at is not posted yet — each messenger's cards go at their own
    pace); return its value. The wait is long enough for a card behind a dozen others
    in one channel, paced at a post a second, on a busy machine."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            value = check()
            if value:
                return value
        except (AssertionError, LookupError):
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(0.05)


@dataclass
class SignedEndpoint:
    """Another system's webhook — a listening platform's reply endpoint, a ticket system —
    that checks our signature and keeps what it was sent."""

    secret: str
    replies: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    server: TestServer | None = None
    # Set: a reply is taken (kept) at once, but answered only when this is set — a
    # platform slow to answer, or a caller that stops waiting mid-call.
    held: asyncio.Event | None = None

    async def start(self) -> None:
        async def take(request: web.Request) -> web.Response:
            body = await request.read()
            if not verify(body, self.secret, request.headers.get("X-Signature")):
                self.refused += 1
                return web.json_response({"error": "bad signature"}, status=401)
            data = json.loads(body)
            self.replies.append(data)
            reply_id = f"reply-{len(self.replies)}"
            if self.held is not None:
                await self.held.wait()
            return web.json_response({"id": reply_id, "url": f"https://example.org/{reply_id}"})

        app = web.Application()
        app.router.add_post("/hook", take)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        assert self.server is not None
        await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))


@dataclass
class Chat:
    """A running socialcare with fake Slack, Telegram and listening platform around it."""

    app: App
    slack: FakeSlack
    telegram: FakeTelegram
    platform: SignedEndpoint  # the listening platform that publishes replies
    tickets: SignedEndpoint  # the billing team's ticket system
    base_url: str
    clock: FakeClock

    @property
    def deps(self) -> Deps:
        return self.app.deps

    async def ingest(self, *mentions: dict[str, Any]) -> list[dict[str, Any]]:
        body = json.dumps(list(mentions)).encode()
        async with aiohttp.ClientSession() as session, session.post(
            f"{self.base_url}/ingest", data=body, headers={"X-Signature": sign(body, SECRET)}
        ) as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["results"])

    async def slack_send(self, request: Any) -> Any:
        return await self.slack.deliver(request, f"{self.base_url}/slack/events")

    async def slack_command(self, command: str, text: str = "", *, user: str,
                            channel: str = SLACK_CHANNEL) -> Any:
        """Type a slash command and wait for its (private) answer, which Slack gets after
        the ack: commands sent one after another are answered in that order."""
        before = len(self.slack.responses())
        await self.slack_send(self.slack.slash_command(command, text, user=user,
                                                       channel=channel))
        return await eventually(lambda: len(self.slack.responses()) > before
                                and self.slack.responses()[before])

    async def telegram_send(self, update: dict[str, Any], **kwargs: Any) -> Any:
        return await self.telegram.deliver_webhook(
            update, f"{self.base_url}/telegram/webhook",
            **({"secret_token": TELEGRAM_SECRET} | kwargs),
        )

    async def tick(self, *, minutes: float = 0) -> None:
        """Move the clock forward as the running scheduler would live through it: in
        half-minute steps, firing what falls due at each; then let the cards catch up."""
        steps = max(1, round(minutes * 2))
        for _ in range(steps):
            self.clock.advance(minutes=minutes / steps)
            # The app's own scheduler runs too; the database lets each point fire once.
            await timers.fire_due(uow=self.deps.uow(), clock=self.clock,
                                  config=self.deps.team.sla)
            await timers.fire_escalations(uow=self.deps.uow(), clock=self.clock,
                                          team=self.deps.team)
        self.deps.wake()

    async def card_recorded(self, card: Any) -> None:
        """Wait until the app has recorded a Telegram card it posted (the message id comes
        back after the post), so that a reply to it finds its case."""
        async def recorded() -> bool:
            async with self.deps.uow() as uow:
                return await uow.cards.find("telegram", str(card.chat_id),
                                            str(card.message_id)) is not None

        deadline = asyncio.get_running_loop().time() + 10
        while not await recorded():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"card {card.message_id} not recorded within 10 s")
            await asyncio.sleep(0.05)

    def slack_cards(self, channel: str = SLACK_CHANNEL) -> list[Any]:
        return [m for m in self.slack.messages(channel, include_replies=False)
                if m.metadata and m.metadata.get("event_type") == "socialcare_case"]

    def telegram_cards(self, chat: int = TELEGRAM_CHAT) -> list[Any]:
        return [m for m in self.telegram.bot_messages(chat) if m.reply_markup is not None
                or (m.text or "").startswith("#")]


def mention(external_id: str, text: str = "Kcell, why is there no 4G in Almaty again?",
            *, published: datetime, source: str = "webhook", **extra: Any) -> dict[str, Any]:
    return {
        "source": source, "external_id": external_id, "text": text,
        "published_at": published.isoformat(), "platform": "instagram",
        "url": f"https://www.instagram.com/p/{external_id}",
        "author": {"id": "42", "name": "Aigerim S.", "handle": "@aigerim_s"},
        **extra,
    }


def chat_config(tmp_path: Path, reply_url: str, tickets_url: str,
                edit: Callable[[str], str] | None = None) -> Path:
    """config.example.toml, with its webhook source publishing replies to `reply_url`
    and its billing team's ticket system at `tickets_url`; then `edit`ed."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for commented, live in (
        ('# options = { reply_url = "https://listening.example.com/socialcare/reply" }',
         f'options = {{ reply_url = "{reply_url}" }}'),
        ('# webhook_url = "https://tickets.example.com/api/socialcare"',
         f'webhook_url = "{tickets_url}"'),
    ):
        assert commented in text
        text = text.replace(commented, live)
    if edit is not None:
        text = edit(text)
    return write_config(tmp_path / "socialcare.toml", text)


@asynccontextmanager
async def running_chat(
    tmp_path: Path,
    clock: FakeClock,
    *,
    socket_mode: bool = False,
    polling: bool = False,
    config: Callable[[str], str] | None = None,
    environment: dict[str, Any] | None = None,
    **fakes: Any,
) -> AsyncIterator[Chat]:
    """Start the fakes, then socialcare with both messengers, on the back end under test.

    Slack comes over HTTP (or Socket Mode), Telegram by webhook (or polling); `config`
    edits the config file's text (to enable sources, say); `environment` adds settings
    (SMTP_URL, say). A task started meanwhile (but the test's own) that is still running
    once all has stopped is cancelled, its stack logged, and fails the test."""
    before = asyncio.all_tasks()
    try:
        async with _chat(tmp_path, clock, socket_mode=socket_mode, polling=polling,
                         config=config, environment=environment, **fakes) as chat:
            yield chat
    except BaseException:
        await _outliving(before)  # stopped, and logged; the test's own failure is told
        raise
    left = await _outliving(before)
    if left:
        raise AssertionError(f"{len(left)} task(s) outlived the app's stop (cancelled; "
                             f"their stacks are in the log): {', '.join(left)}")


@asynccontextmanager
async def _chat(
    tmp_path: Path,
    clock: FakeClock,
    *,
    socket_mode: bool,
    polling: bool,
    config: Callable[[str], str] | None,
    environment: dict[str, Any] | None,
    **fakes: Any,
) -> AsyncIterator[Chat]:
    url = database_url(tmp_path)
    await reset_database(url)
    platform, tickets = SignedEndpoint(SECRET), SignedEndpoint(HANDOFF_SECRET)
    await platform.start()
    await tickets.start()
    async with FakeSlack(**fakes.get("slack", {})) as slack, \
            FakeTelegram(**fakes.get("telegram", {})) as telegram:
        slack.add_channel("care", channel_id=SLACK_CHANNEL)
        for user, name in ((AIGERIM_SLACK, "aigerim"), (SAULE_SLACK, "saule"),
                           (STRANGER_SLACK, "stranger"), (NURLAN_SLACK, "nurlan"),
                           (GULNARA_SLACK, "gulnara")):
            slack.add_user(user, name=name)
        telegram.add_chat(TELEGRAM_CHAT, title="Care team")
        telegram.add_chat(CALLBACK_CHAT, title="Call centre")
        for private in (AIGERIM_TG, DANIYAR_TG, SAULE_TG, ASKAR_TG):
            telegram.add_chat(private["id"], first_name=private["first_name"])
        port = free_port()
        settings = Settings(
            database_url=url, redis_url=TEST_REDIS_URL,
            config_file=chat_config(tmp_path, platform.url, tickets.url, config),
            ingest_webhook_secret=SECRET, handoff_webhook_secret=HANDOFF_SECRET,
            slack_bot_token=slack.bot_token, slack_api_url=slack.url,
            slack_signing_secret=None if socket_mode else slack.signing_secret,
            slack_app_token=slack.app_token if socket_mode else None,
            telegram_bot_token=telegram.token, telegram_api_url=telegram.url,
            telegram_webhook_url=None if polling
            else f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_webhook_secret=None if polling else TELEGRAM_SECRET,
            console_url=f"http://127.0.0.1:{port}",
            **(environment or {}),
        )
        async with runtime(settings, clock=clock) as app:
            await app.deps.redis.flushdb()
            server = TestServer(build_app(app), port=port)
            await server.start_server()
            try:
                async with _stuck_after(STUCK_AFTER):
                    yield Chat(app, slack, telegram, platform, tickets,
                               f"http://127.0.0.1:{port}", clock)
            finally:
                await server.close()
    await platform.close()
    await tickets.close()


async def _outliving(before: set[asyncio.Task[Any]]) -> list[str]:
    """Cancel the tasks started while the app ran that are still running after it
    stopped (and the fakes closed), but the test's own; log where each was; return
    their names. A task left running makes the test's event loop wait for it at its
    close, and a task that will not end then hangs the run with no clue."""
    current = asyncio.current_task()
    running = [task for task in asyncio.all_tasks()
               if task not in before and task is not current and not _the_tests(task)]
    if running:  # a task ending as the stop reached it is given a moment
        await asyncio.wait(running, timeout=OUTLIVE_GRACE)
    left = [task for task in running if not task.done()]
    if not left:
        return []
    stacks = io.StringIO()
    for task in left:
        print(f"{_named(task)}:", file=stacks)
        task.print_stack(limit=12, file=stacks)
    log.error("%d task(s) outlived the app's stop; cancelling them. They wait at:\n%s",
              len(left), stacks.getvalue())
    for task in left:
        task.cancel()
    _, stuck = await asyncio.wait(left, timeout=OUTLIVE_GRACE)
    return [_named(task) + (" (not even cancelled)" if task in stuck else "")
            for task in left]


def _the_tests(task: asyncio.Task[Any]) -> bool:
    """Tell whether the task runs a coroutine of a test module (a test's own helper)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and Path(code.co_filename).name.startswith("test_")


def _named(task: asyncio.Task[Any]) -> str:
    """Name a task by its name and the coroutine it runs (with its module)."""
    coro = task.get_coro()
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    return f"{task.get_name()} ({module}.{getattr(coro, '__qualname__', coro)})"


@asynccontextmanager
async def _stuck_after(seconds: float) -> AsyncIterator[None]:
    """Fail a test that is still running after `seconds`, printing where every task is
    waiting, rather than letting it hang until the suite's timeout with no clue."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=stacks)
        raise AssertionError(f"stuck for {seconds:.0f} s; the tasks:\n{stacks.getvalue()}") \
            from None


def minutes_ago(clock: FakeClock, minutes: float) -> datetime:
    return clock.now() - timedelta(minutes=minutes)
