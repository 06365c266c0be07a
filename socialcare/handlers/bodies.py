"""Request bodies with a size limit that holds however they are sent.

A limit checked against Content-Length alone lets a chunked body (which has none)
through whole; here the body is read piece by piece and refused as soon as it passes
the limit, so a stranger can make the process hold no more than that.
"""

from __future__ import annotations

from aiohttp import web


class TooLarge(Exception):
    """The body is over the route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


async def read_body(request: web.Request, *, limit: int) -> bytes:
    """Return the request's body, or raise TooLarge once it is over `limit` bytes."""
    if (request.content_length or 0) > limit:
        raise TooLarge(limit)
    body = bytearray()
    async for piece in request.content.iter_any():
        body += piece
        if len(body) > limit:
            raise TooLarge(limit)
    return bytes(body)
