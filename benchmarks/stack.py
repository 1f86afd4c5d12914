"""The stack the benchmark runs on: the Firestore emulator, the Svix stand-in, function servers.

The stand-in runs in its own process (``python -m devstack.svix_standin``), not as a thread of the
benchmark: the in-process floor and the HTTP clients would otherwise share one GIL with it, and
the floor would pay for the stand-in's work while the function did not.
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
TOKEN = "testsk_bench.standin-token"  # noqa: S105 (the stand-in's, not a secret)
SVIX_LATENCY = 0.02  # seconds the stand-in waits before each answer: a fast, nearby Svix


class Standin:
    """The Svix stand-in as a child process, with its control API as methods."""

    def __init__(self, log_path: Path, latency: float = SVIX_LATENCY) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latency = latency
        self._log_path = log_path
        self._process: subprocess.Popen | None = None
        self._control = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> Standin:
        command = [
            sys.executable,
            "-m",
            "devstack.svix_standin",
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
                raise RuntimeError(f"the Svix stand-in exited: see {self._log_path}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            time.sleep(0.05)
        raise RuntimeError("the Svix stand-in did not start")

    @property
    def pgid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def reset(self) -> None:
        self._control.post("/_standin/reset").raise_for_status()

    def calls(self) -> list[dict[str, Any]]:
        response = self._control.get("/_standin/calls")
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
        self.standin: Standin | None = None
        self._servers: list[FunctionServer] = []

    def __enter__(self) -> Stack:
        emulators.check_prerequisites()
        self.firestore = emulators.start_firestore(PROJECT, log_path=self.logs / "firestore.log")
        self.standin = Standin(self.logs / "standin.log").start()
        os.environ.update(self.firestore.env)  # for the in-process clients (floor, counting)
        os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        for server in self._servers:
            server.stop()
        if self.standin is not None:
            self.standin.stop()
        if self.firestore is not None:
            self.firestore.stop()
        if exc_type is None:
            shutil.rmtree(self.logs, ignore_errors=True)
        else:
            print(f"benchmark logs kept in {self.logs}", file=sys.stderr)

    def env(self, **overrides: str) -> dict[str, str]:
        """What the function needs: the emulator, the stand-in, the token; defaults otherwise."""
        assert self.firestore is not None and self.standin is not None
        return {
            **self.firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SVIX_API_KEY": TOKEN,
            "SVIX_SERVER_URL": self.standin.url,
            **overrides,
        }

    def server(self, target: str, threads: int, name: str, **env: str) -> FunctionServer:
        """A function under functions-framework (``FUNCTION_SOURCE`` picks another file)."""
        server = FunctionServer(target, self.env(**env), self.logs / f"{name}.log", threads=threads)
        self._servers.append(server)
        return server.start()

    def reset(self) -> None:
        """Empty Firestore and the stand-in between setups, so each starts from the same state."""
        assert self.firestore is not None and self.standin is not None
        self.firestore.reset()
        self.standin.reset()
