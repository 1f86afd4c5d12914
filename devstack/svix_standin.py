"""A stand-in for the Svix API, because no Svix server can run in tests or on a laptop.

It answers the few paths the notifier uses with the status codes and JSON shapes of the real
API, so the real `svix` SDK can talk to it (`SvixOptions(server_url=standin.url)`). On top of
that it injects faults on demand (429, 5xx, slow or lost answers, non-JSON bodies) and records
every call and every stored message, so tests can assert "every event in Svix exactly once".

Idempotency mirrors svix-server: a POST with an `idempotency-key` header whose handler already
ran (same token, key and URI) is replayed verbatim instead of being executed again, and a
concurrent duplicate waits for the first one to finish. Answers produced by an injected fault
or an auth failure never ran the handler, so they are not cached.

Control API (no auth, JSON): `POST/DELETE /_standin/faults`, `POST /_standin/reset`,
`GET /_standin/messages`, `GET /_standin/calls`, `GET /_standin/apps`. A fault rule is
`{"op": "msg.create"|"msg.get"|"app.create"|"app.get"|"portal"|"*", "status": 503,
"retry_after": 2, "times": N, "rate": 0.3, "delay": 1.5, "lost": true, "body": "<html>"}`:
`times` limits it to the next N matching calls, `rate` fires it with a (seeded) probability,
`delay` sleeps before answering (alone: a slow but normal answer), `lost` executes the call and
then closes the connection without answering, `body` replaces the JSON error body. Rules are
tried in order; the first that matches and fires applies.

CLI: `python -m devstack.svix_standin --port 8071 --token TOKEN [--latency 0.02]
[--faults-json '[...]']`; the token defaults to `$SVIX_STANDIN_TOKEN`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import random
import re
import secrets
import signal
import socket
import string
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_PAYLOAD_BYTES = 1024 * 1024
IDEMPOTENCY_WAIT_SECONDS = 20.0
PORTAL_EXPIRY_RANGE = (3600, 7 * 24 * 3600)

_ID_PATTERN = re.compile(r"[a-zA-Z0-9\-_.]{1,256}")
_BASE62 = string.digits + string.ascii_letters
_ROUTES = (
    ("POST", re.compile(r"/api/v1/app/?"), "app.create"),
    ("GET", re.compile(r"/api/v1/app/([^/]+)/?"), "app.get"),
    ("POST", re.compile(r"/api/v1/app/([^/]+)/msg/?"), "msg.create"),
    ("GET", re.compile(r"/api/v1/app/([^/]+)/msg/([^/]+)/?"), "msg.get"),
    ("POST", re.compile(r"/api/v1/auth/app-portal-access/([^/]+)/?"), "portal"),
)
FAULT_OPS = frozenset({op for _, _, op in _ROUTES} | {"*"})
_RULE_KEYS = frozenset({"op", "status", "retry_after", "times", "rate", "delay", "lost", "body"})
_LISTED_MESSAGE_KEYS = (
    "app_id",
    "app_uid",
    "id",
    "eventId",
    "eventType",
    "payload",
    "idempotency_key",
    "timestamp",
)
_ERROR_CODES = {401: "authentication_failed", 413: "payload_too_large", 429: "rate_limited"}


# --- answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer; immutable so the idempotency cache can replay it as is."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)


def _error(
    status: int, detail: str, code: str | None = None, headers: tuple[tuple[str, str], ...] = ()
) -> Answer:
    """Svix's error shape, `{"code", "detail"}`, which the SDK turns into `HttpError`."""
    return _json(status, {"code": code or _error_code(status), "detail": detail}, headers)


def _error_code(status: int) -> str:
    if status in _ERROR_CODES:
        return _ERROR_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_")
    except ValueError:
        return "error"


def _not_found() -> Answer:
    return _error(404, "Entity not found")


def _invalid(errors: list[dict[str, Any]]) -> Answer:
    """FastAPI's 422 shape, which the SDK turns into `HTTPValidationError`."""
    return _json(422, {"detail": errors})


def _field_error(name: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", name], "msg": msg, "type": "value_error"}


# --- validation ----------------------------------------------------------------------------


def _id_error(body: dict[str, Any], name: str, required: bool) -> list[dict[str, Any]]:
    value = body.get(name)
    if value is None and not required:
        return []
    if isinstance(value, str) and _ID_PATTERN.fullmatch(value):
        return []
    return [_field_error(name, f"{name} must match ^[a-zA-Z0-9\\-_.]+$ (1..256 characters)")]


def _app_errors(body: dict[str, Any], nested_in: str | None = None) -> list[dict[str, Any]]:
    errors = _id_error(body, "uid", required=False)
    if not isinstance(body.get("name"), str) or not body["name"]:
        errors.append(_field_error("name", "name must be a non-empty string"))
    rate = body.get("throttleRate")
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate < 0):
        errors.append(_field_error("throttleRate", "throttleRate must be a non-negative integer"))
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        errors.append(_field_error("metadata", "metadata must map strings to strings"))
    if nested_in:
        for error in errors:
            error["loc"].insert(1, nested_in)
    return errors


def _message_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = _id_error(body, "eventType", required=True) + _id_error(body, "eventId", False)
    if not isinstance(body.get("payload"), dict):
        errors.append(_field_error("payload", "payload must be a JSON object"))
    if isinstance(body.get("application"), dict):
        errors += _app_errors(body["application"], nested_in="application")
    return errors


def _portal_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    expiry = body.get("expiry")
    low, high = PORTAL_EXPIRY_RANGE
    if expiry is not None and not (isinstance(expiry, int) and low <= expiry <= high):
        return [_field_error("expiry", f"expiry must be between {low} and {high} seconds")]
    if isinstance(body.get("application"), dict):
        return _app_errors(body["application"], nested_in="application")
    return []


def _json_object(raw: bytes) -> dict[str, Any] | Answer:
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        return _invalid([{"loc": ["body"], "msg": "invalid JSON", "type": "value_error.json"}])
    if not isinstance(data, dict):
        return _invalid([{"loc": ["body"], "msg": "expected a JSON object", "type": "type_error"}])
    return data


def _new_id(prefix: str) -> str:
    """KSUID-like: 27 base62 characters, like the ids the real API hands out."""
    return prefix + "".join(secrets.choice(_BASE62) for _ in range(27))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- apps and messages ---------------------------------------------------------------------


class _Store:
    """Applications and messages, addressable by id or uid / eventId like the real API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._apps: dict[str, dict[str, Any]] = {}
            self._uids: dict[str, str] = {}
            self._messages: list[dict[str, Any]] = []
            self._app_messages: dict[str, dict[str, dict[str, Any]]] = {}

    def apps(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._apps.values()))

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy({k: m[k] for k in _LISTED_MESSAGE_KEYS}) for m in self._messages]

    def create_app(self, body: dict[str, Any], get_if_exists: bool) -> Answer:
        if errors := _app_errors(body):
            return _invalid(errors)
        with self._lock:
            existing = self._find_app(body.get("uid"))
            if existing is not None and get_if_exists:
                return _json(200, existing)
            if existing is not None:
                return _error(409, "An application with this uid already exists", "conflict")
            return _json(201, self._insert_app(body))

    def get_app(self, app_ref: str) -> Answer:
        with self._lock:
            app = self._find_app(app_ref)
        return _json(200, app) if app else _not_found()

    def create_message(
        self, app_ref: str, body: dict[str, Any], with_content: bool, idempotency_key: str | None
    ) -> Answer:
        if errors := _message_errors(body):
            return _invalid(errors)
        size = len(json.dumps(body["payload"], separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            return _error(413, f"Payload is {size} bytes, the limit is {MAX_PAYLOAD_BYTES}")
        with self._lock:
            app = self._find_or_create_app(app_ref, body.get("application"))
            if app is None:
                return _not_found()
            by_ref = self._app_messages[app["id"]]
            if body.get("eventId") in by_ref:
                return _error(409, "A message with this eventId already exists", "conflict")
            message = self._insert_message(app, body, idempotency_key)
        return _json(202, _message_out(message, with_content))

    def get_message(self, app_ref: str, msg_ref: str, with_content: bool) -> Answer:
        with self._lock:
            app = self._find_app(app_ref)
            message = self._app_messages[app["id"]].get(msg_ref) if app else None
            out = _message_out(message, with_content) if message else None
        return _json(200, out) if out else _not_found()

    def portal_access(self, app_ref: str, body: dict[str, Any], base_url: str) -> Answer:
        if errors := _portal_errors(body):
            return _invalid(errors)
        with self._lock:
            app = self._find_or_create_app(app_ref, body.get("application"))
        if app is None:
            return _not_found()
        token = "appsk_" + secrets.token_urlsafe(24)
        return _json(200, {"url": f"{base_url}/portal/{app['id']}#key={token}", "token": token})

    def _find_app(self, ref: str | None) -> dict[str, Any] | None:
        if ref is None:
            return None
        return self._apps.get(ref) or self._apps.get(self._uids.get(ref, ""))

    def _find_or_create_app(self, ref: str, app_in: Any) -> dict[str, Any] | None:
        """The real API creates the path's app from an inline `application` if it is missing."""
        app = self._find_app(ref)
        if app is None and isinstance(app_in, dict):
            app = self._insert_app({**app_in, "uid": ref})
        return app

    def _insert_app(self, body: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        app = {"id": _new_id("app_"), "uid": body.get("uid"), "name": body["name"]}
        if body.get("throttleRate") is not None:
            app["throttleRate"] = body["throttleRate"]
        app.update(metadata=dict(body.get("metadata") or {}), createdAt=now, updatedAt=now)
        self._apps[app["id"]] = app
        self._app_messages[app["id"]] = {}
        if app["uid"] is not None:
            self._uids[app["uid"]] = app["id"]
        return app

    def _insert_message(
        self, app: dict[str, Any], body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        message = {
            "app_id": app["id"],
            "app_uid": app["uid"],
            "id": _new_id("msg_"),
            "eventId": body.get("eventId"),
            "eventType": body["eventType"],
            "payload": body["payload"],
            "channels": body.get("channels"),
            "tags": body.get("tags"),
            "idempotency_key": idempotency_key,
            "timestamp": _now(),
        }
        self._messages.append(message)
        by_ref = self._app_messages[app["id"]]
        by_ref[message["id"]] = message
        if message["eventId"] is not None:
            by_ref[message["eventId"]] = message
        return message


def _message_out(message: dict[str, Any], with_content: bool) -> dict[str, Any]:
    out = {k: message[k] for k in ("id", "eventId", "eventType", "timestamp")}
    out["payload"] = copy.deepcopy(message["payload"]) if with_content else {}
    out.update({k: message[k] for k in ("channels", "tags") if message[k] is not None})
    return out


# --- faults --------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """One fault rule, as described in the module docstring."""

    op: str = "*"
    status: int | None = None
    retry_after: float | str | None = None
    times: int | None = None
    rate: float | None = None
    delay: float = 0.0
    lost: bool = False
    body: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> FaultRule:
        """Reject typos loudly: a silently ignored rule makes a fault test pass for nothing."""
        if not isinstance(raw, dict) or not set(raw) <= _RULE_KEYS:
            raise ValueError(f"fault rule must be an object with keys from {sorted(_RULE_KEYS)}")
        rule = cls(**raw)
        if rule.op not in FAULT_OPS:
            raise ValueError(f"unknown op {rule.op!r}, expected one of {sorted(FAULT_OPS)}")
        if rule.status is not None and not 100 <= rule.status <= 599:
            raise ValueError(f"status {rule.status} is not an HTTP status")
        if rule.status is not None and rule.lost:
            raise ValueError("a rule either answers with a status or loses the answer")
        if rule.rate is not None and not 0 <= rule.rate <= 1:
            raise ValueError("rate must be within 0..1")
        return rule

    def answer(self) -> Answer:
        headers = () if self.retry_after is None else (("Retry-After", _seconds(self.retry_after)),)
        assert self.status is not None
        if self.body is not None:
            return Answer(self.status, self.body.encode(), "text/html; charset=utf-8", headers)
        return _error(self.status, f"Injected fault ({self.status})", headers=headers)


def _seconds(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Faults:
    """Ordered rules; the first matching rule that fires applies to a call."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []

    def set(self, rules: Iterable[dict[str, Any]]) -> None:
        parsed = [FaultRule.parse(raw) for raw in rules]
        with self._lock:
            self._rules = parsed

    def pick(self, op: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.op in (op, "*") and self._fires(rule):
                    return rule
        return None

    def _fires(self, rule: FaultRule) -> bool:
        if rule.times is not None and rule.times <= 0:
            return False
        if rule.rate is not None and self._rng.random() >= rule.rate:
            return False
        if rule.times is not None:
            rule.times -= 1
        return True


# --- idempotency ---------------------------------------------------------------------------


class _Idempotency:
    """svix-server's idempotency cache: finished answers per (auth, key, URI), replayed as is."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: dict[tuple[str, str, str], Answer | object] = {}

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()
            self._cond.notify_all()

    def run(self, key: tuple[str, str, str], execute: Callable[[], Answer]) -> tuple[Answer, bool]:
        """Return (answer, replayed); runs `execute` at most once per key."""
        claim = object()
        deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
        with self._cond:
            while (entry := self._entries.get(key)) is not None:
                if isinstance(entry, Answer):
                    return entry, True
                if not self._cond.wait(deadline - time.monotonic()):
                    return _error(500, "A request with this idempotency key is in progress"), False
            self._entries[key] = claim
        answer = None
        try:
            answer = execute()
            return answer, False
        finally:
            self._finish(key, claim, answer)

    def _finish(self, key: tuple[str, str, str], claim: object, answer: Answer | None) -> None:
        with self._cond:
            if self._entries.get(key) is claim:
                if answer is None:
                    del self._entries[key]
                else:
                    self._entries[key] = answer
            self._cond.notify_all()


# --- HTTP plumbing -------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    target: str
    headers: HTTPMessage
    body: bytes
    url: urllib.parse.SplitResult = field(init=False)

    def __post_init__(self) -> None:
        self.url = urllib.parse.urlsplit(self.target)

    def query(self, name: str) -> str | None:
        values = urllib.parse.parse_qs(self.url.query).get(name)
        return values[-1] if values else None

    @property
    def auth(self) -> str:
        return self.headers.get("Authorization", "")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def retry_count(self) -> int:
        try:
            return int(self.headers.get("svix-retry-count", "0"))
        except ValueError:
            return 0


def _route(method: str, path: str) -> tuple[str | None, list[str]]:
    for route_method, pattern, op in _ROUTES:
        if method == route_method and (match := pattern.fullmatch(path)):
            return op, [urllib.parse.unquote(g) for g in match.groups()]
    return None, []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, for the SDK's pooled httpx client
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        with contextlib.suppress(OSError):  # the client is already gone
            super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            self.close_connection = True  # client timed out or hung up; nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and benchmarks make thousands of calls."""

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = _Request(self.command, self.path, self.headers, self.rfile.read(length))
        answer = self.server.standin.serve(request)
        if answer is None:
            self.close_connection = True  # "lost": close without a single byte of answer
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: SvixStandin) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Hang up keep-alive connections so a stopped stand-in stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


# --- the stand-in --------------------------------------------------------------------------


class SvixStandin:
    """The Svix API stand-in; binds at construction, serves from a daemon thread after start()."""

    def __init__(
        self,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        forbidden_tokens: Iterable[str] = (),
        seed: int = 0,
        *,
        latency: float = 0.0,
        faults: Iterable[dict[str, Any]] = (),
    ) -> None:
        self._token = token
        self._forbidden = frozenset(forbidden_tokens)
        self._latency = latency
        self._store = _Store()
        self._faults = _Faults(seed)
        self._faults.set(faults)
        self._idempotency = _Idempotency()
        self._calls: list[dict[str, Any]] = []
        self._calls_lock = threading.Lock()
        self._busy = threading.Condition()
        self._inflight = 0
        self._server = _Server((host, port), self)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> SvixStandin:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop
                name="svix-standin",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> SvixStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the fault rules; raises ValueError on an invalid rule."""
        self._faults.set(rules)

    def clear_faults(self) -> None:
        self._faults.set(())

    def reset(self, drain: float = 10.0) -> None:
        """Forget apps, messages, idempotency cache, fault rules and recorded calls.

        Waits (up to ``drain`` seconds) for API requests still being answered, such as slow
        ones whose client gave up: they would otherwise land in the state after the reset.
        """
        self.clear_faults()
        with self._busy:
            self._busy.wait_for(lambda: self._inflight == 0, timeout=drain)
        self._store.clear()
        self._idempotency.clear()
        self.clear_faults()
        with self._calls_lock:
            self._calls.clear()

    def messages(self) -> list[dict[str, Any]]:
        return self._store.messages()

    def calls(self) -> list[dict[str, Any]]:
        with self._calls_lock:
            return [dict(call) for call in self._calls]

    def apps(self) -> list[dict[str, Any]]:
        return self._store.apps()

    def serve(self, request: _Request) -> Answer | None:
        """Answer one HTTP request; None means "close the connection without answering"."""
        if request.url.path.startswith("/_standin/"):
            return self._control(request)
        return self._serve_api(request)

    def _serve_api(self, request: _Request) -> Answer | None:
        with self._busy:
            self._inflight += 1
        try:
            return self._answer_api(request)
        finally:
            with self._busy:
                self._inflight -= 1
                self._busy.notify_all()

    def _answer_api(self, request: _Request) -> Answer | None:
        at = time.monotonic()
        op, params = _route(request.method, request.url.path)
        rule = self._faults.pick(op) if op else None
        time.sleep(self._latency + (rule.delay if rule else 0.0))
        if rule is not None and rule.status is not None:
            answer, replayed = rule.answer(), False
        else:
            answer, replayed = self._execute(request, op, params)
        lost = rule is not None and rule.lost
        self._record(request, op, "lost" if lost else answer.status, at, replayed)
        return None if lost else answer

    def _execute(self, request: _Request, op: str | None, params: list[str]) -> tuple[Answer, bool]:
        if op is None:
            return _not_found(), False
        denied = self._check_auth(request.auth)
        if denied is not None:
            return denied, False
        key = request.idempotency_key
        if request.method != "POST" or not key:
            return self._handle(request, op, params), False
        return self._idempotency.run(
            (request.auth, key, request.target), lambda: self._handle(request, op, params)
        )

    def _check_auth(self, header: str) -> Answer | None:
        scheme, _, token = header.partition(" ")
        if scheme == "Bearer" and token in self._forbidden:
            return _error(403, "This token may not access this resource", "forbidden")
        if scheme != "Bearer" or not secrets.compare_digest(token.encode(), self._token.encode()):
            return _error(401, "Invalid token")
        return None

    def _handle(self, request: _Request, op: str, params: list[str]) -> Answer:
        with_content = request.query("with_content") != "false"
        if op == "app.get":
            return self._store.get_app(params[0])
        if op == "msg.get":
            return self._store.get_message(params[0], params[1], with_content)
        body = _json_object(request.body)
        if isinstance(body, Answer):
            return body
        if op == "app.create":
            return self._store.create_app(body, request.query("get_if_exists") == "true")
        if op == "msg.create":
            key = request.idempotency_key
            return self._store.create_message(params[0], body, with_content, key)
        return self._store.portal_access(params[0], body, self.url)

    def _record(
        self, request: _Request, op: str | None, status: int | str, at: float, replayed: bool
    ) -> None:
        call = {
            "op": op or "unknown",
            "method": request.method,
            "path": request.url.path,
            "status": status,
            "idempotency_key": request.idempotency_key,
            "retry_count": request.retry_count,
            "at": at,
            "replayed": replayed,
        }
        with self._calls_lock:
            self._calls.append(call)

    def _control(self, request: _Request) -> Answer:
        path, method = request.url.path.rstrip("/"), request.method
        if (method, path) == ("POST", "/_standin/faults"):
            return self._control_set_faults(request.body)
        if (method, path) == ("DELETE", "/_standin/faults"):
            self.clear_faults()
            return _json(200, {"rules": 0})
        if (method, path) == ("POST", "/_standin/reset"):
            self.reset()
            return _json(200, {"reset": True})
        listings = {"messages": self.messages, "calls": self.calls, "apps": self.apps}
        name = path.removeprefix("/_standin/")
        if method == "GET" and name in listings:
            return _json(200, listings[name]())
        return _error(404, f"No control endpoint {method} {path}")

    def _control_set_faults(self, raw: bytes) -> Answer:
        try:
            rules = json.loads(raw or b"[]")
            if not isinstance(rules, list):
                raise ValueError("expected a JSON list of fault rules")
            self.set_faults(rules)
        except (ValueError, TypeError) as exc:
            return _error(400, str(exc), "bad_request")
        return _json(200, {"rules": len(rules)})


# --- CLI -----------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.svix_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--token", default=os.environ.get("SVIX_STANDIN_TOKEN"))
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--faults-json", default="[]", help="JSON list of fault rules")
    parser.add_argument("--seed", type=int, default=0, help="seed for rate-based faults")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or $SVIX_STANDIN_TOKEN is required")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    standin = SvixStandin(
        args.token,
        host=args.host,
        port=args.port,
        seed=args.seed,
        latency=args.latency,
        faults=json.loads(args.faults_json),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    with standin:
        print(f"svix-standin listening on {standin.url}", flush=True)
        while True:
            signal.pause()


def _exit_on_signal(signum: int, frame: object) -> None:
    """Raise rather than set an Event: Event.set() from a handler can deadlock Event.wait()."""
    raise SystemExit(0)


if __name__ == "__main__":
    main()
