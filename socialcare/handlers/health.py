"""`GET /healthz` (database and Redis reachable?) and `GET /metrics` (Prometheus; with
METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`)."""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from socialcare.adapters.telemetry import CONTENT_TYPE
from socialcare.deps import Deps
from socialcare.storage.database import ping

log = logging.getLogger(__name__)

# A health probe must answer even when a dependency hangs.
PROBE_TIMEOUT = 2.0


def register(app: web.Application, deps: Deps) -> None:
    """Add the health and metrics routes."""

    async def healthz(_request: web.Request) -> web.Response:
        checks = {"database": ping(deps.engine), "redis": deps.redis.ping()}
        report: dict[str, str] = {}
        for name, probe in checks.items():
            try:
                await asyncio.wait_for(probe, PROBE_TIMEOUT)
                report[name] = "ok"
            except Exception as error:  # every failure is a "down", named by its class
                log.warning("health check: %s is down: %s", name, type(error).__name__)
                report[name] = f"down: {type(error).__name__}"
        healthy = all(v == "ok" for v in report.values())
        return web.json_response(
            {"status": "ok" if healthy else "unhealthy", **report}, status=200 if healthy else 503
        )

    token = deps.settings.metrics_token

    async def metrics(request: web.Request) -> web.Response:
        if token is not None and not _bearer(request, token.get_secret_value()):
            return web.json_response(
                {"error": "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>"},
                status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        body = deps.telemetry.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


def _bearer(request: web.Request, token: str) -> bool:
    """Tell whether the request carries the bearer token (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
