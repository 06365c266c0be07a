"""Machinery shared by the fake chat servers: a local aiohttp app, a call log, faults, limits.

Both fakes (`tests.fakes.slack`, `tests.fakes.telegram`) run every API call through
`FakeServer.run_call`, which decides in this order:

1. an injected or chaos fault for the method (see `fail_next`, `slow_next`, `timeout_next`,
   `set_chaos`);
2. the fake's rate limits (when `rate_limits_enabled`);
3. the method itself, which may still answer an API error.

What a fault does to the fake's state:

* ``fail_next`` (429 / 5xx / any status): answered at once, **not applied**.
* ``slow_next``: the call waits ``delay`` seconds, then is applied and answered normally. If the
  client gives up before that, the handler is cancelled and the call is **not applied**.
* ``timeout_next(applied=False)``: the request is swallowed: nothing is applied, and after
  ``delay`` seconds the connection is dropped without an answer (the client sees a disconnect,
  or its own timeout if that is shorter).
* ``timeout_next(applied=True)``: "applied but the response was lost": the call **is applied**,
  then the connection is dropped after ``delay`` seconds without an answer. Use it to test
  idempotency of retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

Clock = Callable[[], float]

CHAOS_KINDS = ("ratelimited", "server_error", "timeout", "lost_response", "slow")
DEFAULT_CHAOS_KINDS = ("ratelimited", "server_error", "timeout")


class ManualClock:
    """Stand in for `time.monotonic` so tests move time forward instead of sleeping."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds`."""
        self.now += seconds


@dataclass(frozen=True)
class Call:
    """One API call as the fake saw it and answered it."""

    method: str
    params: dict[str, Any]
    at: datetime
    status: int | None  # None: the connection was dropped without an answer
    response: Any  # the JSON (or text) answered; None when nothing was answered
    applied: bool  # whether the call changed the fake's state
    fault: str | None = None  # "injected 429", "ratelimited", "timeout", "lost_response", ...

    @property
    def ok(self) -> bool:
        """Tell whether the call was answered with a success."""
        return (
            self.status == 200 and isinstance(self.response, dict) and bool(self.response.get("ok"))
        )


@dataclass
class Reply:
    """An HTTP answer of a fake API method, and whether the method changed any state."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    applied: bool = False


@dataclass(frozen=True)
class Fault:
    """A failure the fake plays instead of (or around) a call."""

    kind: str  # "error" | "slow" | "timeout" | "lost_response"
    status: int = 0
    retry_after: int = 1
    error: str | None = None
    delay: float = 0.0


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes

    def describe(self) -> dict[str, Any]:
        """Summarise the file for the call log (bytes are not logged)."""
        return {
            "filename": self.filename,
            "size": len(self.data),
            "content_type": self.content_type,
        }


class TokenBucket:
    """Allow `rate` calls a second per key, with bursts of up to `burst` calls."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._state: dict[Any, tuple[float, float]] = {}

    def _tokens(self, key: Any, now: float) -> float:
        tokens, last = self._state.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def wait(self, key: Any, now: float) -> float:
        """Return how long a call for `key` must wait (0 when it may go now)."""
        tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: Any, now: float) -> None:
        """Spend one call for `key`."""
        self._state[key] = (self._tokens(key, now) - 1.0, now)


class SlidingWindow:
    """Allow `limit` calls per `period` seconds per key."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._times: dict[Any, deque[float]] = {}

    def _recent(self, key: Any, now: float) -> deque[float]:
        times = self._times.setdefault(key, deque())
        while times and times[0] <= now - self.period:
            times.popleft()
        return times

    def wait(self, key: Any, now: float) -> float:
        """Return how long a call for `key` must wait (0 when it may go now)."""
        times = self._recent(key, now)
        return 0.0 if len(times) < self.limit else times[0] + self.period - now

    def take(self, key: Any, now: float) -> None:
        """Spend one call for `key`."""
        self._recent(key, now).append(now)


Limit = tuple[TokenBucket | SlidingWindow, Any]


def wait_for_limits(limits: Iterable[Limit], now: float) -> float:
    """Return how long a call must wait for the most exhausted of `limits` (0: it may go)."""
    return max((limiter.wait(key, now) for limiter, key in limits), default=0.0)


def spend(limits: Iterable[Limit], now: float) -> None:
    """Spend one call on every limit."""
    for limiter, key in limits:
        limiter.take(key, now)


def retry_after_seconds(wait: float) -> int:
    """Round a wait up to the whole seconds a Retry-After carries (at least 1)."""
    return max(1, math.ceil(wait - 1e-9))


class FaultInjector:
    """Hand out the faults queued by tests, then the seeded chaos ones."""

    def __init__(self, exempt: frozenset[str]) -> None:
        self.exempt = exempt
        self._queued: dict[str, deque[Fault]] = {}
        self._chaos_ratio = 0.0
        self._chaos_rng = random.Random(0)
        self._chaos_methods: frozenset[str] | None = None
        self._chaos_kinds: tuple[str, ...] = DEFAULT_CHAOS_KINDS
        self._chaos_retry_after = 1
        self._chaos_slow_delay = 0.2
        self._chaos_timeout_delay = 1.0

    def queue(self, method: str, fault: Fault, times: int) -> None:
        """Play `fault` on the next `times` calls of `method` ("*": any non-exempt method)."""
        self._queued.setdefault(method, deque()).extend([fault] * times)

    def set_chaos(
        self,
        ratio: float,
        *,
        seed: int,
        methods: Iterable[str] | None,
        kinds: Iterable[str],
        retry_after: int,
        slow_delay: float,
        timeout_delay: float,
    ) -> None:
        """Fail a seeded random `ratio` of calls with faults drawn from `kinds`."""
        kinds = tuple(kinds)
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kinds {sorted(unknown)}; known: {CHAOS_KINDS}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be between 0 and 1")
        self._chaos_ratio = ratio
        self._chaos_rng = random.Random(seed)
        self._chaos_methods = frozenset(methods) if methods is not None else None
        self._chaos_kinds = kinds
        self._chaos_retry_after = retry_after
        self._chaos_slow_delay = slow_delay
        self._chaos_timeout_delay = timeout_delay

    def clear(self) -> None:
        """Forget queued faults and switch chaos off."""
        self._queued.clear()
        self._chaos_ratio = 0.0

    def take(self, method: str) -> Fault | None:
        """Return the fault to play for this call of `method`, if any."""
        for key in (method, "*"):
            if key == "*" and method in self.exempt:
                continue
            queue = self._queued.get(key)
            if queue:
                return queue.popleft()
        return self._chaos(method)

    def _chaos(self, method: str) -> Fault | None:
        if self._chaos_ratio <= 0 or not self._chaos_kinds:
            return None
        if self._chaos_methods is None:
            if method in self.exempt:
                return None
        elif method not in self._chaos_methods:
            return None
        if self._chaos_rng.random() >= self._chaos_ratio:
            return None
        kind = self._chaos_rng.choice(self._chaos_kinds)
        if kind == "ratelimited":
            return Fault("error", status=429, retry_after=self._chaos_retry_after)
        if kind == "server_error":
            return Fault("error", status=self._chaos_rng.choice((500, 502, 503)))
        if kind == "slow":
            return Fault("slow", delay=self._chaos_slow_delay)
        return Fault(kind, delay=self._chaos_timeout_delay)


async def read_fields(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Collect the query string and the body (JSON, form or multipart) into one dict."""
    fields: dict[str, Any] = dict(request.query)
    files: dict[str, UploadedFile] = {}
    if request.method != "POST" or not request.can_read_body:
        return fields, files
    content_type = request.content_type
    if content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            body = json.loads(raw)
            if isinstance(body, dict):
                fields.update(body)
    elif content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            data = await part.read(decode=True)
            if part.filename is not None:
                files[part.name] = UploadedFile(
                    part.name, part.filename, part.headers.get("Content-Type"), bytes(data)
                )
            else:
                fields[part.name] = bytes(data).decode(part.get_charset("utf-8"))
    else:
        fields.update(await request.post())
    return fields, files


class FakeServer:
    """Run an aiohttp app on 127.0.0.1 (free port) with a call log, faults and rate limits."""

    # Methods that "*" faults and default chaos leave alone (bootstrap and polling calls).
    chaos_exempt: frozenset[str] = frozenset()
    # Whether calls the API rejects (400 ...) still count against the rate limits.
    errors_count_against_limits = True

    def __init__(self, *, clock: Clock | None = None, rate_limits: bool = True) -> None:
        self.clock: Clock = clock or time.monotonic
        self.rate_limits_enabled = rate_limits
        self.calls: list[Call] = []
        self.port = 0
        self._faults = FaultInjector(self.chaos_exempt)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # -- lifecycle

    @property
    def root_url(self) -> str:
        """Return the server's origin, e.g. ``http://127.0.0.1:53211``."""
        if not self.port:
            raise RuntimeError("the fake server is not running; use `async with`")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start serving on 127.0.0.1 on a port the OS picks."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self._closing = asyncio.Event()
        # handler_cancellation: a client that gives up cancels its handler, as on a real server.
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def close(self) -> None:
        """Wake every waiting request and stop the server."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_routes(self, app: web.Application) -> None:
        """Register the fake's routes (subclasses)."""
        raise NotImplementedError

    # -- fault injection

    def fail_next(
        self,
        method: str = "*",
        status: int = 429,
        *,
        retry_after: int = 1,
        error: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with `status` (429 carries `retry_after`).

        The call is not applied. `error` overrides the error text (Slack ``error``, Telegram
        ``description``); with Slack, ``status=200, error="not_in_channel"`` plays an API error.
        """
        self._faults.queue(
            method, Fault("error", status=status, retry_after=retry_after, error=error), times
        )

    def slow_next(self, method: str = "*", *, delay: float, times: int = 1) -> None:
        """Hold the next `times` calls of `method` for `delay` seconds, then apply and answer."""
        self._faults.queue(method, Fault("slow", delay=delay), times)

    def timeout_next(
        self, method: str = "*", *, delay: float = 1.0, applied: bool = False, times: int = 1
    ) -> None:
        """Never answer the next `times` calls: drop the connection after `delay` seconds.

        With ``applied=True`` the call changes the fake's state first ("applied but the
        response was lost"), which is what a retry must be idempotent against.
        """
        kind = "lost_response" if applied else "timeout"
        self._faults.queue(method, Fault(kind, delay=delay), times)

    def set_chaos(
        self,
        ratio: float,
        *,
        seed: int = 0,
        methods: Iterable[str] | None = None,
        kinds: Iterable[str] = DEFAULT_CHAOS_KINDS,
        retry_after: int = 1,
        slow_delay: float = 0.2,
        timeout_delay: float = 1.0,
    ) -> None:
        """Fail a seeded random `ratio` of calls (of `methods`, default: all non-exempt ones).

        `kinds` draws from "ratelimited" (429), "server_error" (500/502/503), "timeout"
        (swallowed, not applied), "lost_response" (applied, answer lost) and "slow" (late but
        applied). ``set_chaos(0)`` switches chaos off.
        """
        self._faults.set_chaos(
            ratio,
            seed=seed,
            methods=methods,
            kinds=kinds,
            retry_after=retry_after,
            slow_delay=slow_delay,
            timeout_delay=timeout_delay,
        )

    def clear_faults(self) -> None:
        """Forget queued faults and switch chaos off."""
        self._faults.clear()

    # -- call log

    def calls_to(self, method: str) -> list[Call]:
        """Return the logged calls of `method`, oldest first."""
        return [call for call in self.calls if call.method == method]

    def reset_calls(self) -> None:
        """Empty the call log."""
        self.calls.clear()

    # -- the pipeline every call goes through

    def fault_reply(self, method: str, fault: Fault) -> Reply:
        """Build the answer of an injected error (subclasses speak their wire format)."""
        raise NotImplementedError

    def limits_for(self, method: str, params: dict[str, Any]) -> list[Limit]:
        """Return the (limiter, key) pairs a call of `method` counts against (subclasses)."""
        return []

    def ratelimited_reply(self, method: str, retry_after: int) -> Reply:
        """Build the answer of a call over the rate limit (subclasses)."""
        raise NotImplementedError

    def log(self, method: str, params: dict[str, Any], reply: Reply | None, **extra: Any) -> None:
        """Append a call to the log."""
        self.calls.append(
            Call(
                method=method,
                params=params,
                at=datetime.now(UTC),
                status=reply.status if reply else None,
                response=reply.body if reply else None,
                applied=extra.pop("applied", reply.applied if reply else False),
                fault=extra.pop("fault", None),
            )
        )

    async def run_call(
        self,
        request: web.Request,
        method: str,
        params: dict[str, Any],
        apply: Callable[[], Awaitable[Reply]],
    ) -> web.StreamResponse:
        """Play faults and limits for one call, apply it, log it and answer it."""
        fault = self._faults.take(method)
        if fault is not None and fault.kind == "error":
            reply = self.fault_reply(method, fault)
            self.log(method, params, reply, fault=f"injected {fault.status}")
            return to_response(reply)
        if fault is not None and fault.kind == "timeout":
            self.log(method, params, None, fault="timeout")
            await self.pause(fault.delay)
            drop_connection(request)
        if fault is not None and fault.kind == "slow":
            await self.pause(fault.delay)
        limits = self.limits_for(method, params) if self.rate_limits_enabled else []
        wait = wait_for_limits(limits, self.clock())
        if wait > 0:
            reply = self.ratelimited_reply(method, retry_after_seconds(wait))
            self.log(method, params, reply, fault="ratelimited")
            return to_response(reply)
        if self.errors_count_against_limits:
            spend(limits, self.clock())
        reply = await apply()
        if reply.applied and not self.errors_count_against_limits:
            spend(limits, self.clock())
        if fault is not None and fault.kind == "lost_response":
            self.log(method, params, None, applied=reply.applied, fault="lost_response")
            await self.pause(fault.delay)
            drop_connection(request)
        self.log(method, params, reply, fault="slow" if fault is not None else None)
        return to_response(reply)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when the server is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)


def drop_connection(request: web.Request) -> None:
    """Close the client's connection without an answer (what a timeout looks like)."""
    if request.transport is not None:
        request.transport.close()
    # aiohttp treats a cancelled handler as a client that went away, and sends nothing.
    raise asyncio.CancelledError


def to_response(reply: Reply) -> web.Response:
    """Turn a Reply into an aiohttp response (JSON unless the body is text)."""
    if isinstance(reply.body, str):
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)
