"""A TCP proxy that can cut the network between clients and a server, and heal it.

Placed in front of the broker (whose advertised listener points at the proxy, so every
connection a client opens after bootstrap also goes through it). ``cut()`` drops every open
connection and holds new ones unanswered (a black hole, like a pulled cable: clients see
timeouts, not refusals); ``heal()`` closes the held ones so clients reconnect at once, and
forwards again.

Example::

    proxy = TcpProxy(listen_port=29092, target_port=19092).start()
    proxy.cut(); time.sleep(15); proxy.heal()
    proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

log = logging.getLogger(__name__)
_CHUNK = 65536


class TcpProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.listen_port = listen_port
        self.target_port = target_port
        self.cut_count = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy")
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.listen_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        if self._cut:
            return  # held: never answered until heal() closes it
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            self._open.discard(writer)
            return
        self._open.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._cut:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._open.discard(writer)

    def _drop_all(self) -> None:
        for writer in list(self._open):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._open.clear()

    def cut(self) -> None:
        """Drop every connection and black-hole new ones."""

        def go() -> None:
            self._cut = True
            self.cut_count += 1
            self._drop_all()

        self._loop.call_soon_threadsafe(go)
        log.warning("proxy %d -> %d: network cut", self.listen_port, self.target_port)

    def heal(self) -> None:
        def go() -> None:
            self._cut = False
            self._drop_all()  # the held connections: their clients reconnect at once

        self._loop.call_soon_threadsafe(go)
        log.warning("proxy %d -> %d: network healed", self.listen_port, self.target_port)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            self._drop_all()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
