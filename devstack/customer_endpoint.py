"""A sample customer's webhook endpoint for ``make run``: what a customer of the platform runs.

One local HTTP server; each project's Svix endpoint points at ``/<project>``. Every POST is checked
with the svix SDK's own verifier (``Webhook(secret).verify``) against that endpoint's signing
secret, as Svix tells its customers to do; a valid one is answered 204, anything else 401 (and
Svix retries it). Each delivery is recorded (svix-id, event id and type, signature valid or not)
and, with ``log_path``, appended as a JSON line for ``make serve`` to watch. Payload values are
never recorded or printed: ids and types only.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from svix.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One POST the endpoint got."""

    project: str
    svix_id: str
    event_id: str | None
    event_type: str | None
    signature_valid: bool
    received_at: float


class CustomerEndpoint:
    """``add(project, secret)`` registers a path; ``received()`` lists what arrived."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._secrets: dict[str, str] = {}
        self._received: list[Received] = []
        self._cv = threading.Condition()
        self._log_path = log_path
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = endpoint._receive(self.path.strip("/"), dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url_for(self, project: str) -> str:
        return f"{self.url}/{project}"

    def add(self, project: str, secret: str) -> None:
        """Accept deliveries for ``project`` signed with its endpoint's ``whsec_`` secret."""
        with self._cv:
            self._secrets[project] = secret

    def received(self) -> list[Received]:
        with self._cv:
            return list(self._received)

    def wait(self, predicate: Any, timeout: float) -> bool:
        """Until ``predicate(received)`` holds; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: predicate(list(self._received)), timeout)

    def _receive(self, project: str, headers: dict[str, str], body: bytes) -> int:
        secret = self._secrets.get(project)
        headers = {name.lower(): value for name, value in headers.items()}
        valid = False
        if secret is not None:
            try:
                Webhook(secret).verify(body, headers)
                valid = True
            except (WebhookVerificationError, ValueError, UnicodeDecodeError):
                valid = False  # forged, stale, or not even well-formed: refused alike
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {}
        record = Received(
            project=project,
            svix_id=str(headers.get("svix-id", "")),
            event_id=document.get("id") if isinstance(document.get("id"), str) else None,
            event_type=document.get("type") if isinstance(document.get("type"), str) else None,
            signature_valid=valid,
            received_at=time.time(),
        )
        with self._cv:
            self._received.append(record)
            self._cv.notify_all()
            if self._log_path is not None:
                with self._log_path.open("a") as log:
                    log.write(json.dumps(asdict(record)) + "\n")
        return 204 if valid else 401

    def start(self) -> CustomerEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CustomerEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
