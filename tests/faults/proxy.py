"""A TCP proxy that a test puts between the app and a server, to cut the line and
restore it without touching the server (other test runs share it)."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

CHUNK = 64 * 1024


class CuttableProxy:
    """Forward 127.0.0.1:`port` to `target`; `cut` drops every connection and refuses
    new ones (the server is gone, as far as the client can tell) until `restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        await self.restore()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cut()

    @property
    def is_up(self) -> bool:
        """Tell whether the proxy is taking connections."""
        return self._server is not None

    async def restore(self) -> None:
        """Listen again, on the same port as before (a free one the first time)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._link, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Stop listening (new connections are refused) and drop the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            link.cancel()
        if self._links:
            await asyncio.gather(*self._links, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _link(self, client_reader: asyncio.StreamReader,
                    client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self.accepted += 1
        server_writer: asyncio.StreamWriter | None = None
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_pipe(client_reader, server_writer))
                pipes.create_task(_pipe(server_reader, client_writer))
        except (OSError, asyncio.CancelledError, ExceptionGroup):
            pass
        finally:
            self._links.discard(task)
            for writer in (client_writer, server_writer):
                if writer is not None:
                    _abort(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until it ends; then end the whole link."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    raise ConnectionResetError("one side closed")


def _abort(writer: asyncio.StreamWriter) -> None:
    # An abort (RST), not a polite close: what a crashed server or a cut cable gives.
    with contextlib.suppress(Exception):
        writer.transport.abort()
