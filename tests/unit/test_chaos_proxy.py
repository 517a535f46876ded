"""The chaos TCP proxy on real sockets: forwards, cuts (black hole), heals."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from flts.chaos.proxy import TcpProxy
from flts.infra.procs import free_port


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> int:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _roundtrip(port: int, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(16)


def _send_and_read(sock: socket.socket) -> None:
    sock.sendall(b"b")
    if not sock.recv(4):
        raise ConnectionError("closed by the cut")


def test_forwards_cuts_and_heals(echo_port: int) -> None:
    proxy = TcpProxy(free_port(), echo_port).start()
    try:
        assert _roundtrip(proxy.listen_port) == b"ping"
        held = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=2)
        held.sendall(b"a")
        assert held.recv(4) == b"a"
        proxy.cut()
        with pytest.raises((TimeoutError, ConnectionError, OSError)):
            _send_and_read(held)
        with pytest.raises((TimeoutError, OSError)):
            _roundtrip(proxy.listen_port, timeout=0.5)  # black hole: no answer
        proxy.heal()
        assert _roundtrip(proxy.listen_port) == b"ping"
        assert proxy.cut_count == 1
    finally:
        proxy.stop()
