"""A TCP proxy on loopback in front of a real emulator, that breaks the connections through it as
a flaky network does: resets them, stalls them, or lets requests through and loses the answers.

The function's Firestore client is pointed at the proxy (``FIRESTORE_EMULATOR_HOST``); the test's
own client talks to the emulator directly. Faults are real: the client sees a reset gRPC
connection, a call that hangs until its deadline, a write that landed without an answer.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

from devstack.emulators import free_port


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream`` (host:port) until told to break."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.stalled = False  # nothing moves either way (bytes wait in the kernel)
        self.answers_lost = False  # requests reach the emulator; its answers are dropped
        self.resets = 0
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def reset(self) -> None:
        """Every connection through the proxy is reset now (RST, as a front end's reset)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self.resets += 1
        for pair in pairs:
            for sock in pair:
                _rst(sock)

    def stall(self, seconds: float) -> None:
        """Nothing moves for ``seconds``, then the connections are reset (a dead path)."""
        self.stalled = True
        time.sleep(seconds)
        self.reset()
        self.stalled = False

    def lose_answers(self, seconds: float) -> None:
        """Requests go through for ``seconds`` but no answer comes back; then a reset."""
        self.answers_lost = True
        time.sleep(seconds)
        self.reset()
        self.answers_lost = False

    def close(self) -> None:
        self._closed = True
        self.reset()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _rst(client)
                continue
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                if self.stalled:
                    time.sleep(0.01)
                    if self._gone(client):
                        return
                    continue
                ready, _, _ = select.select([client, server], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if sock is client:
                        server.sendall(data)
                    elif not self.answers_lost:
                        client.sendall(data)
        except (OSError, ValueError):
            for sock in (client, server):
                _rst(sock)

    def _gone(self, client: socket.socket) -> bool:
        with self._lock:
            return all(client is not c for c, _ in self._pairs)


def _rst(sock: socket.socket) -> None:
    """Closes with SO_LINGER 0: the peer gets a reset, not an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
