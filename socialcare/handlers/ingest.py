"""`POST /ingest`: signed JSON mentions from webhooks and social-listening platforms;
`POST /ingest/{name}`: a listening platform's own JSON, mapped by the config;
`GET|POST /meta/{name}`: Meta's webhooks (Facebook pages, Instagram);
`GET|POST /threads/{name}`: Threads webhooks (replies and mentions) of a threads source.

The body is one mention or a JSON list of them, at most 1 MiB, signed with
`X-Signature: sha256=<hex HMAC-SHA256 of the raw body with INGEST_WEBHOOK_SECRET>`.
The whole request is checked before anything is stored: one bad item and nothing
is stored. The answer lists, per item, the case it made or joined or why it was
dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from aiohttp import web

from socialcare.adapters.collectors.mention_json import BadMentions, parse_body
from socialcare.adapters.collectors.push import Pushed, Refused
from socialcare.adapters.collectors.signature import HEADER, verify
from socialcare.bot.model import RawMention
from socialcare.bot.pipeline import IngestResult
from socialcare.bot.team import Source
from socialcare.deps import Deps
from socialcare.handlers import collectors
from socialcare.handlers.bodies import TooLarge, read_body

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
# Bodies from this size on (some fifty mentions) are parsed in a worker thread.
PARSE_IN_THREAD = 32 * 1024
WITH_WEBHOOKS = {"threads": " with webhooks (options app_secret_env, verify_token_env)"}


class Receiver(Protocol):
    """A pushed source's reader of deliveries (mapped, meta, threads)."""

    async def receive(self, source: Source, pushed: Pushed, *,
                      now: datetime) -> list[RawMention]: ...


class Challenged(Protocol):
    """A receiver that answers Meta's check of its endpoint."""

    def challenge(self, query: Mapping[str, str]) -> str: ...


async def _parsed(body: bytes, *, sources: Collection[str], now: datetime) -> list[RawMention]:
    """Parse a body of mentions (`parse_body`): a big one in a worker thread.

    Checking a mention costs some 0.1 ms: a body of a thousand would hold the event
    loop for a tenth of a second, and every other request (a Slack ack among them)
    with it. A small one is parsed here, where a thread's hand-off would cost more."""
    if len(body) < PARSE_IN_THREAD:
        return parse_body(body, sources=sources, now=now)
    return await asyncio.to_thread(parse_body, body, sources=sources, now=now)


def _problem(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def register(app: web.Application, deps: Deps) -> None:
    """Add the ingest route."""
    sources = {s.name for s in deps.team.sources}
    intake = collectors.Intake(deps)

    async def ingest(request: web.Request) -> web.Response:
        secret = deps.settings.ingest_webhook_secret
        if secret is None:
            return _problem(503, "ingest is disabled: INGEST_WEBHOOK_SECRET is not set")
        try:
            body = await read_body(request, limit=MAX_BODY)
        except TooLarge as error:
            return _problem(413, f"{error}: send fewer mentions per request")
        if not verify(body, secret.get_secret_value(), request.headers.get(HEADER)):
            return _problem(401, f"bad or missing {HEADER} signature")
        try:
            raws = await _parsed(body, sources=sources, now=deps.clock.now())
        except BadMentions as error:
            return _problem(400, str(error))
        try:
            results = await intake.take_in(raws)
        except Exception:
            log.exception("ingest of %d mention(s) failed; nothing was stored", len(raws))
            return _problem(503, "storage is unavailable; nothing was stored, retry later")
        return _answer(raws, results)

    app.router.add_post("/ingest", ingest)
    async def mapped(request: web.Request) -> web.Response:
        return await _pushed(request, deps, intake, "mapped")

    async def meta_challenge(request: web.Request) -> web.Response:
        return await _challenge(request, deps.collectors.meta, "meta")

    async def meta(request: web.Request) -> web.Response:
        return await _pushed(request, deps, intake, "meta")

    async def threads_challenge(request: web.Request) -> web.Response:
        return await _challenge(request, deps.collectors.threads, "threads")

    async def threads(request: web.Request) -> web.Response:
        return await _pushed(request, deps, intake, "threads")

    app.router.add_post("/ingest/{name}", mapped)
    app.router.add_get("/meta/{name}", meta_challenge)
    app.router.add_post("/meta/{name}", meta)
    app.router.add_get("/threads/{name}", threads_challenge)
    app.router.add_post("/threads/{name}", threads)


async def _pushed(request: web.Request, deps: Deps, intake: collectors.Intake,
                  kind: str) -> web.Response:
    """A pushed source's delivery: check, map, store; answer per mention."""
    name = request.match_info["name"]
    by_kind: dict[str, Mapping[str, Receiver]] = {
        "mapped": deps.collectors.mapped, "meta": deps.collectors.meta,
        "threads": deps.collectors.threads}
    receivers = by_kind[kind]
    receiver = receivers.get(name)
    source = deps.team.source(name)
    if receiver is None or source is None:
        return _problem(404, f"no {kind} source{WITH_WEBHOOKS.get(kind, '')} named {name!r} "
                             "in the config")
    try:
        body = await read_body(request, limit=MAX_BODY)
    except TooLarge as error:
        return _problem(413, f"{error}: send fewer mentions per request")
    pushed = Pushed(query=request.query, headers=request.headers, body=body)
    try:
        raws = await receiver.receive(source, pushed, now=deps.clock.now())
    except Refused as refused:
        return _problem(refused.status, str(refused))
    try:
        results = await intake.take_in(raws)
    except Exception:
        log.exception("ingest of %d mention(s) from %s failed; nothing was stored",
                      len(raws), name)
        return _problem(503, "storage is unavailable; nothing was stored, retry later")
    # Meta wants a 200 for every delivery it should not send again.
    return _answer(raws, results, queued_status=202 if kind == "mapped" else 200)


async def _challenge(request: web.Request, receivers: Mapping[str, Challenged],
                     kind: str) -> web.Response:
    """Meta's check of the endpoint: echo hub.challenge if the verify token matches."""
    receiver = receivers.get(request.match_info["name"])
    if receiver is None:
        return _problem(404, f"no {kind} source{WITH_WEBHOOKS.get(kind, '')} named "
                             f"{request.match_info['name']!r}")
    try:
        return web.Response(text=receiver.challenge(request.query))
    except Refused as refused:
        return _problem(refused.status, str(refused))


def _answer(raws: Sequence[RawMention], results: Sequence[IngestResult] | None, *,
            queued_status: int = 202) -> web.Response:
    """Each mention's outcome; or, handed to the workers, 202 and `queued` for each."""
    if results is None:
        return web.json_response({"results": [
            {"external_id": raw.external_id, "outcome": "queued"} for raw in raws
        ]}, status=queued_status)
    return web.json_response({"results": [
        _result_json(raw.external_id, result) for raw, result in zip(raws, results, strict=True)
    ]})


def _result_json(external_id: str, result: IngestResult) -> dict[str, object]:
    answer: dict[str, object] = {"external_id": external_id, "outcome": result.outcome.value}
    if result.case_id is not None:
        answer["case_id"] = result.case_id
    if result.role is not None:
        answer["as"] = result.role
    if result.reason is not None:
        answer["reason"] = result.reason.value
    return answer
