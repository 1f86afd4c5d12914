"""Bounded body reads (notifier.handlers.http_body) on a real socket: the cap, the declared length,
the deadline that wakes a blocked read, and a body cut off mid-way."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from notifier.handlers import http_body


def environ_on(sock: socket.socket, length: int | None, **kwargs) -> dict:
    environ = {"wsgi.input": sock.makefile("rb"), "gunicorn.socket": sock}
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    http_body.GuardedInput.install(environ, cap=1000, **kwargs)
    return environ


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_a_whole_body_within_the_limit_is_read(pair):
    server, client = pair
    client.sendall(b'{"a": 1}')
    assert http_body.read(environ_on(server, 8), 100) == b'{"a": 1}'


def test_a_declared_length_over_the_limit_is_refused_unread(pair):
    server, _client = pair
    environ = environ_on(server, 5000)
    with pytest.raises(http_body.BodyTooLarge) as caught:
        http_body.read(environ, 100)
    assert (caught.value.size, caught.value.declared) == (5000, True)
    assert environ[http_body.ENVIRON_KEY].received == 0


def test_an_unsized_body_is_read_one_byte_past_the_limit_and_no_further(pair):
    server, client = pair
    client.sendall(b"x" * 5000)
    client.shutdown(socket.SHUT_WR)
    environ = environ_on(server, None)
    with pytest.raises(http_body.BodyTooLarge) as caught:
        http_body.read(environ, 100)
    assert (caught.value.size, caught.value.declared) == (101, False)
    assert environ["wsgi.input"].read() == b""  # stopped: whoever reads next gets nothing


def test_a_body_cut_off_is_incomplete(pair):
    server, client = pair
    client.sendall(b"{            ")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(http_body.BodyIncomplete) as caught:
        http_body.read(environ_on(server, 100), 1000)
    assert caught.value.reason == "cut_off"


def test_a_stalled_body_is_woken_by_the_deadline(pair):
    server, client = pair
    client.sendall(b"{")  # then nothing: the read blocks on the socket until the deadline
    result: list[BaseException] = []

    def reader() -> None:
        try:
            http_body.read(environ_on(server, 100, seconds=0.5), 1000)
        except http_body.BodyIncomplete as exc:
            result.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(30)  # generous: the point is that it ends at all
    assert not thread.is_alive()
    assert [e.reason for e in result] == ["timeout"]


def test_without_a_socket_the_deadline_is_checked_between_reads():
    class Trickle(io.RawIOBase):
        def read(self, size=-1):
            time.sleep(0.05)
            return b"x"

    environ = {"wsgi.input": Trickle(), "CONTENT_LENGTH": "100"}
    http_body.GuardedInput.install(environ, cap=1000, seconds=0.2)
    with pytest.raises(http_body.BodyIncomplete) as caught:
        http_body.read(environ, 1000)
    assert caught.value.reason == "timeout"


def test_once_the_whole_body_is_read_the_deadline_no_longer_applies(pair):
    """A delivery may take longer than the body's deadline (Svix retries): its connection stays."""
    server, client = pair
    client.sendall(b"{}")
    environ = environ_on(server, 2, seconds=0.2)
    assert environ["wsgi.input"].read() == b"{}"  # read by functions-framework, not by us
    time.sleep(0.6)
    assert not environ["wsgi.input"].timed_out
    client.sendall(b"next request")
    assert server.recv(100) == b"next request"  # the read side was not shut


def test_bodies_read_at_once_share_one_deadline_thread_and_each_stalls_out_at_its_own():
    """The deadline costs no thread per request: 40 bodies in flight, the later deadlines first,
    start no thread beyond the one watchdog, and every stalled one ends, earliest first."""
    warm, pairs = socket.socketpair(), [socket.socketpair() for _ in range(40)]
    ended: dict[int, float] = {}
    readers = []
    try:
        warm[1].sendall(b"{}")
        http_body.read(environ_on(warm[0], 2, seconds=5), 100)  # the watchdog runs from here on
        threads_before = threading.active_count()
        environs = []
        for index, (server, client) in enumerate(pairs):
            client.sendall(b"{")
            environs.append(environ_on(server, 100, seconds=0.4 + 0.02 * (39 - index)))
            environs[-1]["wsgi.input"].read(1)  # armed now, from the first read
        assert threading.active_count() == threads_before  # no thread per body

        def reader(index: int) -> None:
            with pytest.raises(http_body.BodyIncomplete):
                http_body.read(environs[index], 1000)
            ended[index] = time.monotonic()

        readers = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(40)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join(30)
        assert not any(thread.is_alive() for thread in readers)
        assert sorted(ended) == list(range(40))
        assert ended[39] < ended[0]  # the shortest deadline (the last armed) ended first
    finally:
        for server, client in [warm, *pairs]:
            server.close()
            client.close()
