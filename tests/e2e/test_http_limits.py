"""The HTTP functions' limits, as a hostile or broken client meets them (issue 10, findings 1, 2, 6;
issue 8, part 4): bodies capped before they are read, whatever they declare or however they are
sent, with the worker's memory flat; slow or cut-off bodies answered or dropped, never recorded;
URLs bounded (414); Pub/Sub pushes of any size Pub/Sub can send answered so that they never loop.

Raw sockets, because the point is what a client that does not play by the rules gets. Nothing here
asserts a duration: clients wait generously and the assertions are about answers and records.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.cloudevents import pubsub_request
from devstack.function_server import FunctionServer
from notifier.adapters.firestore.keys import document_key
from notifier.handlers import http_guard
from tests import factories
from tests.e2e.conftest import KEEPALIVE, function_env, log_lines

LIMIT = 100_000  # NOTIFIER_MAX_PAYLOAD_BYTES of these servers
THREADS = 2  # few threads, so that a handful of slow clients could take them all
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def servers(firestore_emulator, svix_server, logs_dir) -> Iterator[dict[str, FunctionServer]]:
    env = function_env(firestore_emulator, svix_server, NOTIFIER_MAX_PAYLOAD_BYTES=str(LIMIT))
    notifications = FunctionServer(
        "notifications",
        env,
        logs_dir / "limits-notifications.log",
        signature_type="http",
        threads=THREADS,
    )
    portal = FunctionServer(
        "app_portal", env, logs_dir / "limits-portal.log", signature_type="http", threads=THREADS
    )
    with notifications, portal:
        yield {"notifications": notifications, "app_portal": portal}


@pytest.fixture
def api(servers, db, svix) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=servers["notifications"].url, timeout=60, limits=KEEPALIVE
    ) as client:
        yield client


def rejected(db) -> list[dict]:
    return [d.to_dict() for d in db.collection("rejected").stream()]


# -- a client that does not play by the rules ------------------------------------------------


@dataclass
class Exchange:
    """One request on a raw socket: sent in a thread while the answer is read in another, as a
    client sees it when the server answers (and closes) before the body is all sent."""

    status: int | None = None
    answer: bytes = b""
    sent: int = 0
    closed_early: bool = False  # the server stopped the upload (closed or reset)
    done: threading.Event = field(default_factory=threading.Event)


def exchange(
    port: int,
    head: bytes,
    body: Iterable[bytes] = (),
    *,
    half_close: bool = False,
    wait: float = 90.0,
) -> Exchange:
    result = Exchange()
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)

    def send() -> None:
        try:
            sock.sendall(head)
            result.sent += len(head)
            for piece in body:
                if result.done.is_set():
                    return
                sock.sendall(piece)
                result.sent += len(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            result.closed_early = True

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                length = _content_length(received[:head_end])
                if length is not None and len(received) >= head_end + 4 + length:
                    break
    except OSError:
        pass
    result.done.set()
    if received.startswith(b"HTTP/1.1 "):
        result.status = int(received[9:12])
        result.answer = received.partition(b"\r\n\r\n")[2]
    sender.join(30)
    sock.close()
    return result


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def post_head(path: str, *, length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def chunked(total: int, piece: int = MiB) -> Iterator[bytes]:
    block = b"x" * piece
    for _ in range(total // piece):
        yield f"{piece:x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def slowly(data: bytes, every: float = 1.0) -> Iterator[bytes]:
    for byte in data:
        time.sleep(every)
        yield bytes([byte])


# -- the worker's memory, from /proc ----------------------------------------------------------


def worker_pids(server: FunctionServer) -> list[int]:
    """The gunicorn arbiter (functions-framework's process) and its workers."""
    root = server._process.pid
    children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
    return [root, *map(int, children)]


def rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class PeakRss:
    """Samples the function's resident memory while a block runs; ``growth`` is peak - before."""

    def __init__(self, server: FunctionServer) -> None:
        self.pids = worker_pids(server)
        self.before = self.peak = rss(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self.pids))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)  # the answer is out; let whatever the worker still does show
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


# -- finding 1: caps enforced before reading ---------------------------------------------------


@pytest.mark.parametrize("path", ["/notifications", "/app-portal"])
def test_a_chunked_body_far_over_the_cap_is_refused_early_with_flat_memory(servers, db, path):
    server = servers["notifications" if path == "/notifications" else "app_portal"]
    total = 200 * MiB
    with PeakRss(server) as memory:
        result = exchange(server.port, post_head(path), chunked(total))
    assert result.status == 413, result
    assert json.loads(result.answer)["error"] == "too_large"
    # The upload was stopped soon after the cap (~14 MB for a push envelope), not received whole.
    assert result.sent < total // 2
    # Before: the whole 200 MiB was read into memory (95 -> 298 MB). Generous margin for the rest.
    assert memory.growth < 100 * MiB, f"the function grew by {memory.growth / MiB:.0f} MiB"
    assert rejected(db) == []


@pytest.mark.parametrize("path", ["/notifications", "/app-portal"])
def test_a_declared_length_over_the_cap_is_refused_before_anything_is_read(servers, db, path):
    server = servers["notifications" if path == "/notifications" else "app_portal"]
    result = exchange(server.port, post_head(path, length=50_000_000) + b"{}")
    assert result.status == 413, result
    assert json.loads(result.answer)["error"] == "too_large"
    assert rejected(db) == []


def test_a_lying_content_length_is_answered_and_nothing_is_kept(servers, db):
    """Declares 10 MB (a size a push envelope may have), sends ``{}``, and waits."""
    port = servers["notifications"].port
    result = exchange(port, post_head("/notifications", length=10_000_000) + b"{}")
    assert result.status == 408, result  # before: no answer at all
    assert json.loads(result.answer) == {"error": "body_timeout"}
    assert rejected(db) == []


def test_a_portal_body_over_16_kib_is_a_413_whatever_it_declares(servers):
    port = servers["app_portal"].port
    body = json.dumps({"project": "acme", "pad": "x" * 20_000}).encode()
    lying = exchange(port, post_head("/app-portal", length=100) + body[:100])
    assert lying.status == 400  # 100 bytes of a JSON object: not valid JSON, nothing more read
    honest = exchange(port, post_head("/app-portal", length=len(body)) + body)
    assert honest.status == 413
    unsized = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert exchange(port, post_head("/app-portal"), [unsized]).status == 413


# -- finding 2: slow and cut-off bodies ----------------------------------------------------------


def test_slow_bodies_do_not_hold_up_a_normal_post(servers, api, db, svix):
    """As many slow clients as the worker has threads, each sending a byte a second."""
    port = servers["notifications"].port
    results: list[Exchange] = []

    def slow_client() -> None:
        body = json.dumps(factories.event()).encode()
        results.append(exchange(port, post_head("/notifications", length=len(body)), slowly(body)))

    slow = [threading.Thread(target=slow_client) for _ in range(THREADS)]
    for thread in slow:
        thread.start()
    time.sleep(1.5)  # the slow clients hold both threads now
    event = factories.event()
    answer = api.post("/notifications", content=json.dumps(event).encode())  # waits up to 60 s
    assert (answer.status_code, answer.json()["status"]) == (201, "sent")
    for thread in slow:
        thread.join(120)
    # Each slow client was answered 408 long before its ~1 KB body could arrive at 1 byte/s.
    assert [r.status for r in results] == [408] * THREADS
    assert all(r.sent < 500 for r in results)
    assert rejected(db) == [] and [m["eventId"] for m in svix.messages()] == [event["id"]]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_cut_off_midway_is_answered_and_never_recorded(servers, db, svix, framing):
    port = servers["notifications"].port
    start = b"{            "
    if framing == "content-length":
        head, body = post_head("/notifications", length=100), [start]
    else:
        head, body = post_head("/notifications"), [b"%x\r\n%s\r\n" % (len(start), start)]
    result = exchange(port, head, body, half_close=True)  # the client stops sending
    assert result.status in (400, None), result  # answered, or dropped: the client has gone
    if result.status == 400:
        assert json.loads(result.answer) == {"error": "incomplete_body"}
    assert rejected(db) == [] and svix.calls() == []
    entries = log_lines(servers["notifications"].log_path)
    assert any(e.get("message") == "request body incomplete: cut_off" for e in entries)


# -- finding 6: bounded URLs ------------------------------------------------------------------


@pytest.mark.parametrize("size", [9 * 1024, MiB, 8 * MiB])
def test_a_url_over_8_kib_is_a_414(servers, size):
    port = servers["app_portal"].port
    head = f"GET /app-portal?project={'a' * size} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    result = exchange(port, head)
    assert result.status == 414, result  # before: 400 invalid_project, after seconds of parsing
    # The worker is still there, and a normal URL is served.
    ok = httpx.get(f"{servers['app_portal'].url}/app-portal?project=..", timeout=30)
    assert ok.status_code == 400


def test_a_url_under_the_bound_is_served(servers, svix, db):
    url = f"{servers['app_portal'].url}/app-portal?project=acme&pad={'a' * 7000}"
    assert httpx.get(url, timeout=30).status_code == 404  # unknown_project: it got through


# -- issue 8 part 4: a push into notifications never loops -----------------------------------


def push(api, data: bytes, message_id: str, **message) -> httpx.Response:
    _, body = pubsub_request(data, message_id)
    envelope = json.loads(body)
    envelope["message"].update(message)
    return api.post("/notifications", content=json.dumps(envelope).encode())


def test_a_push_of_an_event_over_the_limit_is_kept_as_too_large_and_acknowledged(api, db, svix):
    data = json.dumps(factories.event(data={"blob": "x" * (1_200_000)})).encode()
    for delivery in (1, 2):
        answer = push(api, data, "big-1")
        assert (answer.status_code, answer.json()) == (200, {"status": "rejected"})
        saved = db.collection("rejected").document(document_key("pubsub-big-1")).get().to_dict()
        assert (saved["reason"], saved["raw_size"], saved["deliveries"]) == (
            "too_large",
            len(data),
            delivery,
        )
    assert svix.calls() == []


def test_a_push_of_a_10_mb_message_is_answered_2xx(api, db, svix):
    data = json.dumps(factories.event(data={"blob": "x" * 9_990_000})).encode()
    assert len(data) <= 10_000_000
    answer = push(api, data, "ten-mb")
    assert answer.status_code == 200, answer.text
    saved = db.collection("rejected").document(document_key("pubsub-ten-mb")).get().to_dict()
    assert (saved["reason"], saved["raw_size"], saved["raw_truncated"]) == (
        "too_large",
        len(data),
        True,
    )


def test_a_valid_event_with_100_maximum_size_attributes_is_sent(api, db, svix):
    event = factories.event(data={"blob": "y" * 90_000})
    attributes = {f"{i:03d}".ljust(256, "k"): "v" * 1024 for i in range(100)}
    answer = push(api, json.dumps(event).encode(), "attrs-1", attributes=attributes)
    assert answer.status_code == 201, answer.text
    assert [m["eventId"] for m in svix.messages()] == [event["id"]]


def test_a_forged_push_cannot_rewrite_a_rejection_record(api, db, svix):
    """Finding 3 through the served function: the first witness stands, later ones count."""
    first = push(api, b"{not json", "23", publishTime="2026-11-30T10:00:00Z")
    assert first.status_code == 200
    original = db.collection("rejected").document(document_key("pubsub-23")).get().to_dict()
    _, body = pubsub_request(b"[1, 2, 3]", "23")
    forged = json.loads(body)
    forged["subscription"] = "projects/evil/subscriptions/forged"
    forged["message"]["publishTime"] = "2030-01-01T00:00:00Z"
    assert api.post("/notifications", content=json.dumps(forged).encode()).status_code == 200
    saved = db.collection("rejected").document(document_key("pubsub-23")).get().to_dict()
    for name in ("raw", "raw_size", "publish_time", "subscription", "reason"):
        assert saved[name] == original[name], name
    assert saved["raw"] == b"{not json" and saved["deliveries"] == 2


def test_duplicate_keys_posted_are_a_400_duplicate_key(api, db, svix):
    text = json.dumps(factories.event(project="acme"))
    body = (text[:-1] + ', "project": "globex"}').encode()
    answer = api.post("/notifications", content=body)
    assert (answer.status_code, answer.json()["error"]) == (400, "duplicate_key")
    assert [r["reason"] for r in rejected(db)] == ["duplicate_key"] and svix.calls() == []


def test_raw_size_of_a_rejected_push_is_the_size_received_not_the_size_kept(api, db, svix):
    attributes = {f"{i:03d}".ljust(256, "k"): "v" * 1024 for i in range(100)}
    _, body = pubsub_request(b"", "no-data-1")
    envelope = json.loads(body)
    envelope["message"].pop("data", None)
    envelope["message"]["attributes"] = attributes
    answer = api.post("/notifications", content=json.dumps(envelope).encode())
    assert (answer.status_code, answer.json()) == (200, {"status": "rejected"})
    saved = db.collection("rejected").document(document_key("pubsub-no-data-1")).get().to_dict()
    assert saved["reason"] == "no_data"
    assert saved["raw_size"] > 100 * (256 + 1024) > len(saved["raw"])  # the attributes alone
    assert saved["raw_truncated"] is True


def test_the_event_function_caps_bodies_too(function, db):
    """``on_event`` is served by functions-framework, which reads the whole body itself: the
    guard bounds that read too, so an oversized POST is answered without filling the memory."""
    total = 200 * MiB
    with PeakRss(function) as memory:
        result = exchange(function.port, post_head("/"), chunked(total))
    assert result.status is not None and 400 <= result.status < 500, result
    assert result.sent < total // 2
    assert memory.growth < 100 * MiB, f"the function grew by {memory.growth / MiB:.0f} MiB"
    assert rejected(db) == []


@pytest.mark.parametrize(("name", "path"), [("notifications", "/nowhere"), ("app_portal", "/x")])
def test_a_body_the_handler_does_not_read_is_not_read_at_all(servers, name, path):
    """A 404 (or 405, or a GET) leaves the body unread: functions-framework does not read it
    either, so the answer does not wait for the upload."""
    server = servers[name]
    result = exchange(server.port, post_head(path), chunked(200 * MiB))
    assert result.status == 404, result
    assert result.sent < http_guard.BODY_CAP  # what the guard would have let it read
