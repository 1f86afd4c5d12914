"""The Svix server's twin, because no Svix server can run in tests or on a laptop
(docs/decisions/svix-twin-copied-from-source.md): the entry, the HTTP server, faults and the
control API.

Every behaviour is copied from svix-server (sources: devstack/SVIX_TWIN.md, which also describes
the control API and the fault rules); the parts live beside this module. The real `svix` SDK
talks to it (`SvixOptions(server_url=twin.url)`).

CLI: `python -m devstack.svix_twin.server --port 8071 --token TOKEN [--latency 0.02]
[--faults-json '[...]']`; the token defaults to `$SVIX_TWIN_TOKEN`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.svix_twin import endpoints, event_types, operational_endpoints, recovery
from devstack.svix_twin.answers import Answer, Refusal, http_error, json_answer, not_found
from devstack.svix_twin.clock import Clock
from devstack.svix_twin.delivery import SHORT_SCHEDULE, Deliveries
from devstack.svix_twin.failures import DISABLE_AFTER_SECONDS
from devstack.svix_twin.faults import FaultRule, Faults
from devstack.svix_twin.idempotency import Idempotency
from devstack.svix_twin.store import Db
from devstack.svix_twin.validation import parse_body

__all__ = ["FAULT_OPS", "Answer", "FaultRule", "SvixTwin"]

_APP = r"/api/v1/app/([^/]+)"
_EP = _APP + r"/endpoint/([^/]+)"
_OPS = r"/api/v1/operational-webhook/endpoint"
_WEEK = 7 * 24 * 3600.0
_OP = _OPS + r"/([^/]+)"
_ROUTES = (
    ("POST", re.compile(r"/api/v1/app/?"), "app.create"),
    ("GET", re.compile(r"/api/v1/app/?"), "app.list"),
    ("GET", re.compile(_APP + "/?"), "app.get"),
    ("PUT", re.compile(_APP + "/?"), "app.update"),
    ("DELETE", re.compile(_APP + "/?"), "app.delete"),
    ("POST", re.compile(_APP + r"/msg/?"), "msg.create"),
    ("GET", re.compile(_APP + r"/msg/([^/]+)/?"), "msg.get"),
    ("POST", re.compile(r"/api/v1/auth/app-portal-access/([^/]+)/?"), "portal"),
    ("POST", re.compile(_APP + r"/endpoint/?"), "endpoint.create"),
    ("GET", re.compile(_APP + r"/endpoint/?"), "endpoint.list"),
    ("GET", re.compile(_EP + "/?"), "endpoint.get"),
    ("PUT", re.compile(_EP + "/?"), "endpoint.update"),
    ("PATCH", re.compile(_EP + "/?"), "endpoint.patch"),
    ("DELETE", re.compile(_EP + "/?"), "endpoint.delete"),
    ("GET", re.compile(_EP + r"/secret/?"), "endpoint.secret"),
    ("POST", re.compile(_EP + r"/recover/?"), "endpoint.recover"),
    ("POST", re.compile(_OPS + "/?"), "op_endpoint.create"),
    ("GET", re.compile(_OPS + "/?"), "op_endpoint.list"),
    ("GET", re.compile(_OP + "/?"), "op_endpoint.get"),
    ("PUT", re.compile(_OP + "/?"), "op_endpoint.upsert"),
    ("DELETE", re.compile(_OP + "/?"), "op_endpoint.delete"),
    ("GET", re.compile(_OP + r"/secret/?"), "op_endpoint.secret"),
    ("POST", re.compile(_OP + r"/secret/rotate/?"), "op_endpoint.rotate_secret"),
    ("GET", re.compile(_OP + r"/headers/?"), "op_endpoint.get_headers"),
    ("PUT", re.compile(_OP + r"/headers/?"), "op_endpoint.set_headers"),
    ("POST", re.compile(r"/api/v1/event-type/?"), "event_type.create"),
    ("GET", re.compile(r"/api/v1/event-type/?"), "event_type.list"),
    ("GET", re.compile(r"/api/v1/event-type/([^/]+)/?"), "event_type.get"),
    ("PUT", re.compile(r"/api/v1/event-type/([^/]+)/?"), "event_type.update"),
    ("PATCH", re.compile(r"/api/v1/event-type/([^/]+)/?"), "event_type.patch"),
    ("DELETE", re.compile(r"/api/v1/event-type/([^/]+)/?"), "event_type.delete"),
)
FAULT_OPS = frozenset({op for _, _, op in _ROUTES} | {"*"})
_BODY_OPS = frozenset(
    {
        "app.create",
        "app.update",
        "msg.create",
        "portal",
        "endpoint.create",
        "endpoint.update",
        "endpoint.patch",
        "endpoint.recover",
        "op_endpoint.create",
        "op_endpoint.upsert",
        "op_endpoint.rotate_secret",
        "op_endpoint.set_headers",
        "event_type.create",
        "event_type.update",
        "event_type.patch",
    }
)


def _route(method: str, path: str) -> tuple[str | None, list[str]]:
    for route_method, pattern, op in _ROUTES:
        if method == route_method and (match := pattern.fullmatch(path)):
            return op, [urllib.parse.unquote(g) for g in match.groups()]
    return None, []


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
        answer = self.server.twin.serve(request)
        if answer is None:
            self.close_connection = True  # "lost": close without a single byte of answer
            return
        self.send_response(answer.status)
        if answer.content_type:
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

    def __init__(self, address: tuple[str, int], twin: SvixTwin) -> None:
        self.twin = twin
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
        """Hang up keep-alive connections so a stopped twin stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


# --- the twin --------------------------------------------------------------------------


class SvixTwin:
    """The Svix twin; binds at construction, serves from a daemon thread after start()."""

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
        app_create_race_seconds: float = 0.0,
        retry_schedule: Iterable[float] = SHORT_SCHEDULE,
    ) -> None:
        self._token = token
        self._forbidden = frozenset(forbidden_tokens)
        self._latency = latency
        self.clock = Clock()
        self._db = Db(self.clock)
        self._deliveries = Deliveries(self._db, seed)
        self._db.on_message = self._deliveries.enqueue
        self.configure(
            app_create_race_seconds=app_create_race_seconds, retry_schedule=retry_schedule
        )
        self._faults = Faults(seed, FAULT_OPS)
        self._faults.set(faults)
        self._idempotency = Idempotency(self.clock)
        self._calls: list[dict[str, Any]] = []
        self._calls_lock = threading.Lock()
        self._busy = threading.Condition()
        self._inflight = 0
        self._server = _Server((host, port), self)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> SvixTwin:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # how long stop() waits for the loop
                name="svix-twin",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._deliveries.stop()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> SvixTwin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- test controls ---------------------------------------------------------------------

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the fault rules; raises ValueError on an invalid rule."""
        self._faults.set(rules)

    def clear_faults(self) -> None:
        self._faults.set(())

    def configure(
        self,
        *,
        app_create_race_seconds: float | None = None,
        retry_schedule: Iterable[float] | None = None,
        endpoint_disable_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Widen the check-then-insert gap of app creation; set the delivery retry schedule
        (seconds on the twin's clock, REAL_SCHEDULE is Svix's) and how long an endpoint must
        fail before it is disabled (Svix: 120 h)."""
        if app_create_race_seconds is not None:
            if not 0 <= app_create_race_seconds <= 30:
                raise ValueError("app_create_race_seconds must be within 0..30")
            self._db.race_seconds = float(app_create_race_seconds)
        if retry_schedule is not None:
            schedule = tuple(float(s) for s in retry_schedule)
            if any(not 0 <= s <= _WEEK for s in schedule):
                raise ValueError("retry_schedule entries must be within 0..604800 seconds")
            self._deliveries.schedule = schedule
        if endpoint_disable_after_seconds is not None:
            if not 0 <= endpoint_disable_after_seconds <= 4 * _WEEK:
                raise ValueError("endpoint_disable_after_seconds must be within 0..2419200")
            self._deliveries.failures.disable_after = float(endpoint_disable_after_seconds)
        return {
            "app_create_race_seconds": self._db.race_seconds,
            "retry_schedule": list(self._deliveries.schedule),
            "endpoint_disable_after_seconds": self._deliveries.failures.disable_after,
        }

    def advance_clock(self, seconds: float) -> str:
        """Move the twin's clock forward (idempotency keys, eventId windows); returns now."""
        self.clock.advance(seconds)
        return self.clock.iso()

    def reset(self, drain: float = 10.0) -> None:
        """Forget everything (state, cache, faults, calls, attempts, clock offset, config).

        Waits (up to ``drain`` seconds) for API requests still being answered, such as slow
        ones whose client gave up: they would otherwise land in the state after the reset.
        """
        self.clear_faults()
        with self._busy:
            self._busy.wait_for(lambda: self._inflight == 0, timeout=drain)
        self._db.clear()
        self._deliveries.clear()
        self._idempotency.clear()
        self.clear_faults()
        self.clock.reset()
        self.configure(
            app_create_race_seconds=0.0,
            retry_schedule=SHORT_SCHEDULE,
            endpoint_disable_after_seconds=DISABLE_AFTER_SECONDS,
        )
        with self._calls_lock:
            self._calls.clear()

    def messages(self) -> list[dict[str, Any]]:
        """Every message Svix holds (messages of deleted applications are gone with them)."""
        return self._db.list_messages()

    def calls(self) -> list[dict[str, Any]]:
        with self._calls_lock:
            return [dict(call) for call in self._calls]

    def apps(self) -> list[dict[str, Any]]:
        return self._db.listed_apps()

    def attempts(self) -> list[dict[str, Any]]:
        """Delivery attempts to customer endpoints: id, endpoint_id, endpoint_uid, url,
        app_id, msg_id, event_id, attempt, trigger, status, status_code, error, at."""
        return self._deliveries.attempts()

    def operational_webhooks(self) -> list[dict[str, Any]]:
        """Operational webhooks sent: id (the svix-id), type, data, timestamp, endpoint_ids."""
        return self._deliveries.operational_webhooks.sent()

    def operational_attempts(self) -> list[dict[str, Any]]:
        """Delivery attempts to operational-webhook endpoints (their records carry `type`)."""
        return self._deliveries.attempts(of_operational=True)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery attempt is queued or running; False on timeout."""
        return self._deliveries.idle(timeout)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no attempt is due now or running (retries due later stay queued)."""
        return self._deliveries.settle(timeout)

    def run_schedule(self, horizon: float | None = None, timeout: float = 30.0) -> float:
        """Move the clock to each queued attempt in turn, letting it run, until none is queued
        or the next lies more than ``horizon`` seconds past the start; returns seconds moved."""
        moved = 0.0
        while True:
            if not self._deliveries.settle(timeout):
                raise TimeoutError("deliveries did not settle")
            due_in = self._deliveries.next_due_in()
            if due_in is None or (horizon is not None and moved + due_in > horizon):
                return moved
            self.clock.advance(due_in)
            moved += due_in

    def fail_endpoint(self, app: str, endpoint: str, status: int | None = 503) -> None:
        """Answer deliveries to this endpoint with ``status`` (None: connection refused)
        instead of calling it, until heal_endpoint; a customer's endpoint going down."""
        self._deliveries.fail_endpoint(self._endpoint_id(app, endpoint), status)

    def heal_endpoint(self, app: str, endpoint: str) -> None:
        self._deliveries.heal_endpoint(self._endpoint_id(app, endpoint))

    def _endpoint_id(self, app_ref: str, endpoint_ref: str) -> str:
        app = self._db.find_app(app_ref)
        found = endpoints.find(self._db, app["id"], endpoint_ref) if app else None
        if found is None:
            raise ValueError(f"no endpoint {endpoint_ref} in application {app_ref}")
        return str(found["id"])

    # --- the API ---------------------------------------------------------------------------

    def serve(self, request: _Request) -> Answer | None:
        """Answer one HTTP request; None means "close the connection without answering"."""
        if request.url.path.startswith("/_twin/"):
            return self._control(request)
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
            answer, replayed = self._execute(request, op, params, rule.hold if rule else 0.0)
        lost = rule is not None and rule.lost
        self._record(request, op, "lost" if lost else answer.status, at, replayed)
        return None if lost else answer

    def _execute(
        self, request: _Request, op: str | None, params: list[str], hold: float
    ) -> tuple[Answer, bool]:
        """core/idempotency.rs wraps every route: POST + idempotency-key + Authorization.

        A fault's `hold` is spent inside, holding the idempotency lock like a slow handler."""

        def run() -> Answer:
            time.sleep(hold)
            return self._authorized(request, op, params)

        key, auth = request.idempotency_key, request.headers.get("Authorization")
        if request.method != "POST" or not key or auth is None:
            return run(), False
        return self._idempotency.run(Idempotency.key(auth, key, request.target), run)

    def _authorized(self, request: _Request, op: str | None, params: list[str]) -> Answer:
        if op is None:
            return not_found()
        denied = self._check_auth(request.auth)
        if denied is not None:
            return denied
        try:
            return self._handle(request, op, params)
        except Refusal as refusal:
            return refusal.answer

    def _check_auth(self, header: str) -> Answer | None:
        """core/security.rs: 401 "Invalid token"; permissions.rs: 403 for a token without access."""
        scheme, _, token = header.partition(" ")
        if scheme == "Bearer" and token in self._forbidden:
            return http_error(403)
        if scheme != "Bearer" or not secrets.compare_digest(token.encode(), self._token.encode()):
            return http_error(401, detail="Invalid token")
        return None

    def _handle(self, request: _Request, op: str, params: list[str]) -> Answer:
        db, query = self._db, request.query
        body = parse_body(request.body) if op in _BODY_OPS else None
        with_content = query("with_content") != "false"
        limit = _limit(query("limit"))
        handlers: dict[str, Callable[[], Answer]] = {
            "app.create": lambda: db.create_app(body, query("get_if_exists") == "true"),
            "app.list": lambda: db.list_apps(limit, query("iterator")),
            "app.get": lambda: db.get_app(params[0]),
            "app.update": lambda: db.update_app(params[0], body),
            "app.delete": lambda: db.delete_app(params[0]),
            "msg.create": lambda: db.create_message(
                params[0], body, with_content, request.idempotency_key
            ),
            "msg.get": lambda: db.get_message(params[0], params[1], with_content),
            "portal": lambda: db.portal_access(params[0], body, self.url),
            "endpoint.create": lambda: endpoints.create(db, params[0], body),
            "endpoint.list": lambda: endpoints.list_(db, params[0], limit, query("iterator")),
            "endpoint.get": lambda: endpoints.get(db, params[0], params[1]),
            "endpoint.update": lambda: endpoints.update(db, params[0], params[1], body),
            "endpoint.patch": lambda: endpoints.patch(db, params[0], params[1], body),
            "endpoint.delete": lambda: endpoints.delete(db, params[0], params[1]),
            "endpoint.secret": lambda: endpoints.secret(db, params[0], params[1]),
            "endpoint.recover": lambda: recovery.recover(
                db, self._deliveries, params[0], params[1], body
            ),
            "op_endpoint.create": lambda: operational_endpoints.create(db, body),
            "op_endpoint.list": lambda: operational_endpoints.list_(db, limit, query("iterator")),
            "op_endpoint.get": lambda: operational_endpoints.get(db, params[0]),
            "op_endpoint.upsert": lambda: operational_endpoints.upsert(db, params[0], body),
            "op_endpoint.delete": lambda: operational_endpoints.delete(db, params[0]),
            "op_endpoint.secret": lambda: operational_endpoints.secret(db, params[0]),
            "op_endpoint.rotate_secret": lambda: operational_endpoints.rotate_secret(
                db, params[0], body
            ),
            "op_endpoint.get_headers": lambda: operational_endpoints.get_headers(db, params[0]),
            "op_endpoint.set_headers": lambda: operational_endpoints.set_headers(
                db, params[0], body
            ),
            "event_type.create": lambda: event_types.create(db, body),
            "event_type.list": lambda: event_types.list_(
                db,
                limit,
                query("iterator"),
                query("include_archived") == "true",
                query("with_content") == "true",
            ),
            "event_type.get": lambda: event_types.get(db, params[0]),
            "event_type.update": lambda: event_types.update(db, params[0], body),
            "event_type.patch": lambda: event_types.patch(db, params[0], body),
            "event_type.delete": lambda: event_types.delete(
                db, params[0], query("expunge") == "true"
            ),
        }
        return handlers[op]()

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

    # --- control API -----------------------------------------------------------------------

    def _control(self, request: _Request) -> Answer:
        path, method = request.url.path.rstrip("/"), request.method
        try:
            if (method, path) == ("POST", "/_twin/faults"):
                rules = json.loads(request.body or b"[]")
                if not isinstance(rules, list):
                    raise ValueError("expected a JSON list of fault rules")
                self.set_faults(rules)
                return json_answer(200, {"rules": len(rules)})
            if (method, path) == ("DELETE", "/_twin/faults"):
                self.clear_faults()
                return json_answer(200, {"rules": 0})
            if (method, path) == ("POST", "/_twin/reset"):
                self.reset()
                return json_answer(200, {"reset": True})
            if (method, path) == ("POST", "/_twin/clock"):
                seconds = _control_object(request.body, {"advance_seconds"})["advance_seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise ValueError("advance_seconds must be a number")
                return json_answer(200, {"now": self.advance_clock(seconds)})
            if (method, path) == ("POST", "/_twin/config"):
                options = _control_object(
                    request.body,
                    {"app_create_race_seconds", "retry_schedule", "endpoint_disable_after_seconds"},
                )
                return json_answer(200, self.configure(**options))
            if (method, path) == ("POST", "/_twin/run-schedule"):
                horizon = _control_object(request.body, {"horizon_seconds"}).get("horizon_seconds")
                moved = self.run_schedule(horizon)
                return json_answer(200, {"advanced_seconds": moved, "now": self.clock.iso()})
            if path == "/_twin/endpoint-faults" and method in ("POST", "DELETE"):
                keys = {"app", "endpoint", "status"}
                fault = _control_object(request.body, keys)
                if method == "DELETE":
                    self.heal_endpoint(fault["app"], fault["endpoint"])
                else:
                    self.fail_endpoint(fault["app"], fault["endpoint"], fault.get("status", 503))
                return json_answer(200, {"endpoint": fault["endpoint"]})
        except (ValueError, TypeError, KeyError, TimeoutError) as exc:
            return http_error(400, "bad_request", str(exc))
        listings = {
            "messages": self.messages,
            "calls": self.calls,
            "apps": self.apps,
            "attempts": self.attempts,
            "operational": self.operational_webhooks,
            "operational-attempts": self.operational_attempts,
        }
        name = path.removeprefix("/_twin/")
        if method == "GET" and name in listings:
            return json_answer(200, listings[name]())
        return http_error(404, detail=f"No control endpoint {method} {path}")


def _control_object(raw: bytes, keys: set[str]) -> dict[str, Any]:
    data = json.loads(raw or b"{}")
    if not isinstance(data, dict) or not set(data) <= keys:
        raise ValueError(f"expected a JSON object with keys from {sorted(keys)}")
    return data


def _limit(raw: str | None) -> int:
    """v1/utils PaginationLimit: default 50, at most 250."""
    try:
        return max(1, min(int(raw), 250)) if raw else 50
    except ValueError:
        raise Refusal(http_error(400, detail="limit must be an integer")) from None


# --- CLI -----------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.svix_twin.server", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--token", default=os.environ.get("SVIX_TWIN_TOKEN"))
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument("--faults-json", default="[]", help="JSON list of fault rules")
    parser.add_argument("--seed", type=int, default=0, help="seed for rate-based faults")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or $SVIX_TWIN_TOKEN is required")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    twin = SvixTwin(
        args.token,
        host=args.host,
        port=args.port,
        seed=args.seed,
        latency=args.latency,
        faults=json.loads(args.faults_json),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    with twin:
        print(f"svix-twin listening on {twin.url}", flush=True)
        while True:
            signal.pause()


def _exit_on_signal(signum: int, frame: object) -> None:
    """Raise rather than set an Event: Event.set() from a handler can deadlock Event.wait()."""
    raise SystemExit(0)


if __name__ == "__main__":
    main()
