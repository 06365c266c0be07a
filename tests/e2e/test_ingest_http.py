"""POST /ingest on the real server: signed mentions in, clear answers to bad requests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Table, func, select

from socialcare.adapters.collectors.signature import sign
from socialcare.deps import ALL_ROLES, Deps, Role
from socialcare.handlers import workers
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from socialcare.storage.database import create_engine
from socialcare.storage.schema import cases, inbox
from tests.conftest import ROOT, TEST_REDIS_URL, FakeClock, database_url, reset_database
from tests.e2e.conftest import SECRET

MENTION = {
    "source": "webhook",
    "external_id": "1234567890",
    "text": "Kcell, why is there no 4G in Almaty again?",
    "published_at": "2026-11-25T14:55:00+05:00",
    "url": "https://example.org/post/1234567890",
    "platform": "instagram",
    "author": {"id": "42", "name": "Aigerim", "handle": "@aigerim"},
}


async def _post(http: TestClient, payload: Any, *, secret: str = SECRET,
                raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload).encode()
    response = await http.post(
        "/ingest", data=body,
        headers={"X-Signature": sign(body, secret), "Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def _count(deps: Deps, table: Table = cases) -> int:
    async with deps.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_a_signed_mention_becomes_a_case_and_a_repeat_is_reported(
    http: TestClient, app_deps: Deps
) -> None:
    status, first = await _post(http, MENTION)
    _, again = await _post(http, [MENTION, {**MENTION, "external_id": "2", "text": "hello"}])

    assert status == 200
    assert first == {"results": [
        {"external_id": "1234567890", "outcome": "created", "case_id": 1},
    ]}
    assert again == {"results": [
        {"external_id": "1234567890", "outcome": "dropped", "reason": "duplicate"},
        {"external_id": "2", "outcome": "dropped", "reason": "no brand matched"},
    ]}
    metrics = await (await http.get("/metrics")).text()
    assert 'socialcare_mentions_total{outcome="created",reason="",source="webhook"} 1.0' in metrics


async def test_bad_requests_get_their_reason_store_nothing_and_the_server_keeps_serving(
    http: TestClient, app_deps: Deps
) -> None:
    answers = [
        await _post(http, None, raw=b'{"source": "webhook", '),
        await _post(http, {**MENTION, "published_at": 12}),
        await _post(http, {**MENTION, "text": {"nested": True}}),
        await _post(http, [MENTION, {"source": "webhook", "text": "Kcell"}]),
        await _post(http, MENTION, secret="wrong-secret"),
        await _post(http, None, raw=b"x" * (2 * 1024 * 1024)),
    ]
    unsigned = await http.post("/ingest", json=MENTION)

    assert [status for status, _ in answers] == [400, 400, 400, 400, 401, 413]
    reasons = [body["error"] for _, body in answers]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1].startswith("published_at: expected an ISO 8601 time")
    assert reasons[2].startswith("text: Input should be a valid string")
    assert reasons[3].startswith("[1].external_id: Field required")
    assert reasons[4] == "bad or missing X-Signature signature"
    assert "over 1048576 bytes" in reasons[5]
    assert unsigned.status == 401
    assert await _count(app_deps) == 0  # the good mention of the mixed list was not stored

    status, _ = await _post(http, MENTION)
    assert status == 200
    assert await _count(app_deps) == 1


async def test_healthz_reports_database_and_redis(http: TestClient) -> None:
    response = await http.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_healthz_is_unhealthy_when_the_database_is_gone(app: App) -> None:
    nowhere = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/gone")
    try:
        broken = replace(app, deps=replace(app.deps, engine=nowhere))
        web_app = build_app(broken, with_timers=False)
        async with TestClient(TestServer(web_app)) as http:
            response = await http.get("/healthz")
            body = await response.json()
    finally:
        await nowhere.dispose()

    assert response.status == 503
    assert body["status"] == "unhealthy"
    assert body["database"].startswith("down: ")
    assert body["redis"] == "ok"


async def _post_all(http: TestClient, bodies: list[bytes]) -> list[int]:
    """POST the signed bodies to /ingest all at once; return the statuses."""

    async def post(body: bytes) -> int:
        response = await http.post("/ingest", data=body, headers={
            "X-Signature": sign(body, SECRET), "Content-Type": "application/json"})
        await response.read()
        return response.status

    return list(await asyncio.gather(*(post(body) for body in bodies)))


@pytest.mark.parametrize("roles", [ALL_ROLES, frozenset({Role.COLLECTORS})],
                         ids=["stored at once", "handed to the workers"])
async def test_fifty_concurrent_posts_are_each_stored_once_answered_2xx_and_counted(
    tmp_path: Path, clock: FakeClock, roles: frozenset[Role]
) -> None:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml", ingest_webhook_secret=SECRET)
    newest = clock.now() - timedelta(minutes=1)
    bodies = [json.dumps([
        {**MENTION, "external_id": f"m{post}-{n}", "text": f"Kcell, no 4G ({post}/{n})",
         "published_at": (newest - timedelta(seconds=post * 4 + n)).isoformat()}
        for n in range(4)
    ]).encode() for post in range(50)]
    async with runtime(settings, clock=clock, roles=roles) as app:
        await app.deps.redis.flushdb()
        async with TestClient(TestServer(build_app(app, with_timers=False))) as http:
            statuses = await _post_all(http, bodies)
            again = await _post_all(http, bodies[:10])  # resent: nothing doubles
        queued = await _count(app.deps, inbox)
        if app.deps.queue is not None and app.deps.hands_over:
            while await workers.work_once(app.deps, app.deps.queue, "w1", claim_seconds=30,
                                          block_ms=10):
                pass
        stored = await _count(app.deps, cases)
        async with app.deps.uow() as uow:
            state = await uow.sources.get("webhook")

    assert [s for s in statuses + again if s >= 300] == []
    assert queued == (240 if Role.WORKERS not in roles else 0)
    assert stored == 200
    assert state.items_found == 240  # every mention delivered, resent ones too
    assert (state.last_success_at, state.failures) == (clock.now(), 0)
    assert state.last_item_at == newest


async def test_requests_stored_together_are_each_answered_with_their_own_mentions(
    http: TestClient, app_deps: Deps
) -> None:
    """Requests in flight at once are stored in groups: each still gets its own
    mentions' outcomes, in its order, and a mention sent twice at once is one case."""
    bodies = [[{**MENTION, "external_id": f"r{post}-{n}", "text": f"Kcell ({post}/{n})"}
               for n in range(1 + post % 3)] for post in range(30)]
    bodies.append([{**MENTION, "external_id": "r0-0", "text": "Kcell (0/0)"}])  # again

    async def post(items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        return await _post(http, items)

    answers = await asyncio.gather(*(post(items) for items in bodies))

    assert {status for status, _ in answers} == {200}
    for items, (_, answer) in zip(bodies, answers, strict=True):
        assert [r["external_id"] for r in answer["results"]] == \
            [item["external_id"] for item in items]
    outcomes = [r for _, answer in answers for r in answer["results"]]
    created = [r["case_id"] for r in outcomes if r["outcome"] == "created"]
    assert len(created) == len(set(created)) == sum(len(items) for items in bodies[:30])
    assert [r for r in outcomes if r["outcome"] != "created"] == [
        {"external_id": "r0-0", "outcome": "dropped", "reason": "duplicate"}]
    assert await _count(app_deps) == len(created)


async def test_metrics_with_a_token_set_answer_only_the_bearer_of_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml", metrics_token="m-token-42")
    async with runtime(settings, clock=clock) as app, \
            TestClient(TestServer(build_app(app, with_timers=False))) as http:
        answers = {}
        for name, headers in {
            "none": {}, "wrong": {"Authorization": "Bearer m-token-4"},
            "basic": {"Authorization": "Basic m-token-42"},
            "right": {"Authorization": "Bearer m-token-42"},
        }.items():
            response = await http.get("/metrics", headers=headers)
            answers[name] = (response.status, response.headers.get("WWW-Authenticate"),
                             await response.text())
        health = await http.get("/healthz")

    assert {name: status for name, (status, _, _) in answers.items()} == {
        "none": 401, "wrong": 401, "basic": 401, "right": 200}
    assert answers["none"][1] == 'Bearer realm="metrics"'
    assert "socialcare_" not in answers["wrong"][2]
    assert "socialcare_" in answers["right"][2]
    assert health.status == 200  # the probe stays open
