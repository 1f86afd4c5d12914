"""The stack the benchmark runs on: the Firestore emulator, the Svix twin, function servers.

The twin runs in its own process (``python -m devstack.svix_twin.server``), not as a thread of the
benchmark: the in-process floor and the HTTP clients would otherwise share one GIL with it, and
the floor would pay for the twin's work while the function did not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from devstack import emulators
from devstack.function_server import ROOT, FunctionServer, free_port

PROJECT = "notifier-bench"
TOKEN = "testsk_bench.twin-token"  # noqa: S105 (the twin's, not a secret)
SVIX_LATENCY = 0.02  # seconds the twin waits before each answer: a fast, nearby Svix


class Twin:
    """The Svix twin as a child process, with its control API as methods."""

    def __init__(self, log_path: Path, latency: float = SVIX_LATENCY) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latency = latency
        self._log_path = log_path
        self._process: subprocess.Popen | None = None
        self._control = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> Twin:
        command = [
            sys.executable,
            "-m",
            "devstack.svix_twin.server",
            f"--port={self.port}",
            f"--token={TOKEN}",
            f"--latency={self.latency}",
        ]
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Svix twin exited: see {self._log_path}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            time.sleep(0.05)
        raise RuntimeError("the Svix twin did not start")

    @property
    def pgid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def reset(self) -> None:
        self._control.post("/_twin/reset").raise_for_status()

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """The twin's fault rules (``[]``: none), as its control API takes them."""
        self._control.post("/_twin/faults", json=rules).raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        response = self._control.get("/_twin/calls")
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self._control.close()
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(5)


class Stack:
    """Everything the runs need, started once and stopped on the way out."""

    def __init__(self) -> None:
        self.logs = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
        self.firestore: emulators.Emulator | None = None
        self.twin: Twin | None = None
        self._servers: list[FunctionServer] = []

    def __enter__(self) -> Stack:
        emulators.check_prerequisites()
        self.firestore = emulators.start_firestore(PROJECT, log_path=self.logs / "firestore.log")
        self.twin = Twin(self.logs / "twin.log").start()
        os.environ.update(self.firestore.env)  # for the in-process clients (floor, counting)
        os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for server in self._servers:
            server.stop()
        if self.twin is not None:
            self.twin.stop()
        if self.firestore is not None:
            self.firestore.stop()
        if exc_type is None:
            shutil.rmtree(self.logs, ignore_errors=True)
        else:
            print(f"benchmark logs kept in {self.logs}", file=sys.stderr)

    def env(self, **overrides: str) -> dict[str, str]:
        """What the function needs: the emulator, the twin, the token; defaults otherwise."""
        assert self.firestore is not None and self.twin is not None
        return {
            **self.firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SVIX_API_KEY": TOKEN,
            "SVIX_SERVER_URL": self.twin.url,
            **overrides,
        }

    def server(self, target: str, threads: int, name: str, **env: str) -> FunctionServer:
        """A function under functions-framework (``FUNCTION_SOURCE`` picks another file)."""
        server = FunctionServer(target, self.env(**env), self.logs / f"{name}.log", threads=threads)
        self._servers.append(server)
        return server.start()

    def reset(self) -> None:
        """Empty Firestore and the twin between setups, so each starts from the same state."""
        assert self.firestore is not None and self.twin is not None
        self.firestore.reset()
        self.twin.reset()
