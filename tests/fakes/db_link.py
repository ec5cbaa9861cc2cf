"""A TCP link between the bot and its PostgreSQL server that a test can break, as a network does.

The bot connects to this proxy instead of the server. Three states:

- `up`: bytes flow both ways;
- `refused` ("the database is stopped"): live connections are reset and new ones are closed at
  once, as when the server process is gone and the port answers with RST;
- `black_hole` ("the database is unreachable"): live connections stop carrying bytes and new
  ones are accepted but never answered, as when a firewall drops packets or the host is down —
  every wait then ends only by the bot's own timeouts.

`restore()` lets new connections through again (the old ones stay dead, as after a real outage).
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import Enum


class State(Enum):
    UP = "up"
    REFUSED = "refused"
    BLACK_HOLE = "black_hole"


class DatabaseLink:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.state = State.UP
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def refuse(self) -> None:
        self.state = State.REFUSED
        self._drop_all()

    def black_hole(self) -> None:
        self.state = State.BLACK_HOLE  # the pipes see it and stop forwarding

    def restore(self) -> None:
        self.state = State.UP
        self._drop_all()  # connections that lived through the hole are as good as dead

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.state is State.REFUSED:
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.state is State.BLACK_HOLE:
            return  # accepted, never answered
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(upstream_writer)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if self.state is not State.UP:
                    return  # a black hole swallows the bytes; nothing more ever comes back
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if self.state is State.UP:
                with contextlib.suppress(Exception):
                    sink.close()
