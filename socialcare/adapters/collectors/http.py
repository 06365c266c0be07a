"""HTTP for collectors: one place that turns a source API's trouble into SourceUnavailable.

Every collector calls its API through `request_json`, so a timeout, a refused
connection, a 5xx, a 429 (with its Retry-After or X-Rate-Limit-Reset) or a body that
is not JSON all end the same way: the poll fails with a reason the team can read,
and the source is polled again later — never hammered, never crashed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from socialcare.bot.ports import Clock
from socialcare.bot.sources import SourceUnavailable

TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
MAX_JSON = 5 * 1024 * 1024
# A longer pause asked for is likelier a wrong clock or header than meant: the source is
# tried again a day later rather than forgotten (or the wait overflowing a datetime).
MAX_WAIT = 24 * 60 * 60.0
DELTA_SECONDS = re.compile(r"\d+(\.\d+)?", re.ASCII)


class ApiRefused(SourceUnavailable):
    """The API answered with an error status; `status` and `body` say which."""

    def __init__(self, message: str, *, status: int, body: Any,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status
        self.body = body


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: Mapping[str, str] | aiohttp.FormData | None = None,
    clock: Clock | None = None,
    client_timeout: aiohttp.ClientTimeout = TIMEOUT,
) -> Any:
    """Call a JSON API and return its decoded answer; raise SourceUnavailable on trouble.

    `what` names the call in the reason ("VK newsfeed.search"); the URL is never in
    it, since some APIs carry the token in the query. A wait the API gives as a time
    (Retry-After as a date, X-Rate-Limit-Reset) is counted from `clock`'s now, or from
    the wall clock's without one.
    """
    try:
        async with session.request(method, url, params=params, headers=headers,
                                   json=json_body, data=data,
                                   timeout=client_timeout) as response:
            body = await read_body(response, MAX_JSON + 1)
            status, answer_headers = response.status, response.headers
    except TimeoutError:
        total = client_timeout.total
        within = f"within {total:g} s" if total else "in time"
        raise SourceUnavailable(f"{what}: no answer {within}") from None
    except aiohttp.ClientError as error:
        raise SourceUnavailable(f"{what}: {_connection_reason(error)}") from None
    if len(body) > MAX_JSON:
        raise SourceUnavailable(f"{what}: answer over {MAX_JSON // (1024 * 1024)} MB")
    try:
        decoded = json.loads(body) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        decoded = None
        if status < 400:
            raise SourceUnavailable(f"{what}: the answer is not JSON (HTTP {status})") from None
    if status >= 400:
        wait = retry_after(answer_headers, now=clock.now() if clock else datetime.now(UTC))
        if status == 429:
            raise ApiRefused(
                f"{what}: rate limited (HTTP 429)" + (f", retry in {wait:.0f} s" if wait else ""),
                status=status, body=decoded, retry_after=wait)
        raise ApiRefused(f"{what}: HTTP {status}{_detail(decoded)}", status=status,
                         body=decoded, retry_after=wait)
    return decoded


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Return the body, or its first `limit` bytes if it is longer.

    Not `content.read(limit)`: that returns whatever has arrived so far, which for a
    body of more than a few packets is only its beginning."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) >= limit:
            break
    del body[limit:]
    return bytes(body)


def retry_after(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """Read how long the API asked us to wait: Retry-After, or X-Rate-Limit-Reset
    (a Unix time, as X sends it) once no calls are left; None if it did not say."""
    value = headers.get("Retry-After")
    if value is not None:
        return retry_after_header(value, now=now)
    reset = headers.get("x-rate-limit-reset")
    if reset is not None and headers.get("x-rate-limit-remaining") == "0":
        try:
            at = float(reset)
        except ValueError:
            return None
        return _bounded(at - now.timestamp()) if math.isfinite(at) else None
    return None


def retry_after_header(value: str, *, now: datetime) -> float | None:
    """Read a Retry-After value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    A date is counted from `now` and a past one means "now" (0 s); anything else that
    is not a number of seconds is ignored (None)."""
    value = value.strip()
    if DELTA_SECONDS.fullmatch(value):
        return _bounded(float(value))
    try:
        until = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if until.tzinfo is None:  # "-0000": an HTTP-date is always GMT
        until = until.replace(tzinfo=UTC)
    return _bounded((until - now).total_seconds())


def _bounded(seconds: float) -> float:
    return min(max(0.0, seconds), MAX_WAIT)


def _detail(body: Any) -> str:
    """Pick the API's own words out of an error body, briefly."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("error_msg")
    elif isinstance(error, str):
        message = body.get("error_description") or error
    else:
        message = body.get("detail") or body.get("title")
    return f": {str(message)[:200]}" if message else ""


def _connection_reason(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect to {error.host}:{error.port}"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the answer was cut off"
    return type(error).__name__


def dumps(value: Any) -> str:
    """JSON text for a form field (some APIs take JSON inside form posts)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
