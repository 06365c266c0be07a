"""`POST /handoff/{team}`: a second-line team's ticket system sends a case back.

    {"case_id": 12, "note": "Refund issued"}

signed like our hand-offs to it: `X-Signature: sha256=<hex HMAC-SHA256 of the raw body
with HANDOFF_WEBHOOK_SECRET>`. The case returns to the agent who handed it off.
"""

from __future__ import annotations

import logging

from aiohttp import web

from socialcare.adapters import json_body
from socialcare.adapters.collectors.signature import HEADER, verify
from socialcare.bot import handoffs
from socialcare.bot.errors import CaseNotFound, DomainError
from socialcare.deps import Deps
from socialcare.handlers.bodies import TooLarge, read_body
from socialcare.handlers.chat import service

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def _problem(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def register(app: web.Application, deps: Deps) -> None:
    """Add the hand-back callback route."""

    async def hand_back(request: web.Request) -> web.Response:
        secret = deps.settings.handoff_webhook_secret
        if secret is None:
            return _problem(503, "hand-back callbacks are off: HANDOFF_WEBHOOK_SECRET is not set")
        try:
            body = await read_body(request, limit=MAX_BODY)
        except TooLarge as error:
            return _problem(413, str(error))
        if not verify(body, secret.get_secret_value(), request.headers.get(HEADER)):
            return _problem(401, f"bad or missing {HEADER} signature")
        name = request.match_info["team"]
        if deps.team.second_line_team(name) is None:
            return _problem(404, f"no second-line team {name!r}")
        try:
            data = json_body.loads(body)
        except json_body.BadJson as error:
            return _problem(400, str(error))
        case_id = data.get("case_id") if isinstance(data, dict) else None
        note = (data.get("note") or "") if isinstance(data, dict) else ""
        if not isinstance(case_id, int) or isinstance(case_id, bool) \
                or not isinstance(note, str):
            return _problem(400, 'expected {"case_id": <number>, "note": <text, optional>}')
        if not 0 < case_id < 2**63:  # a case number is a positive 64-bit integer
            return _problem(400, f"case_id: {case_id} is no case number")
        try:
            changed = await handoffs.hand_back(
                handoffs.HandBack(case_id, f"{handoffs.TEAM_ACTOR}{name}", note),
                **service(deps))
        except CaseNotFound as missing:
            return _problem(404, str(missing))
        except DomainError as refused:
            return _problem(409, str(refused))
        deps.wake()
        return web.json_response({"case_id": case_id, "returned_to": changed.case.claimed_by})

    app.router.add_post("/handoff/{team}", hand_back)
