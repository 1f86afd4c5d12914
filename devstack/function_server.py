"""Runs a function under functions-framework in its own process group, as Cloud Functions does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from devstack.emulators import free_port

ROOT = Path(__file__).resolve().parent.parent


class FunctionServer:
    """``functions-framework --target=TARGET`` on a free port; stdout+stderr go to ``log_path``."""

    def __init__(
        self,
        target: str,
        env: dict[str, str],
        log_path: Path,
        *,
        signature_type: str = "cloudevent",
        port: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.target = target
        self.env = env
        self.log_path = log_path
        self.signature_type = signature_type
        self.port = port or free_port()
        self.threads = threads
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> FunctionServer:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        if self.threads:
            env["THREADS"] = str(self.threads)
        command = [
            sys.executable,
            "-m",
            "functions_framework",
            f"--target={self.target}",
            f"--signature-type={self.signature_type}",
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.target} exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.target} did not listen on {self.port}:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole group: a crash, with no chance to clean up."""
        self._signal(signal.SIGKILL)

    def terminate(self, grace: float = 10.0) -> float | None:
        """SIGTERM to the whole group, as Cloud Run scales in: the seconds it took to exit, or
        None when it outlived ``grace`` (then it is SIGKILLed, as Cloud Run does)."""
        started = time.monotonic()
        if not self._signal(signal.SIGTERM):
            return None
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            return None
        return time.monotonic() - started

    def stop(self, grace: float = 5.0) -> None:
        if not self._signal(signal.SIGTERM):
            return
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> bool:
        if self._process is None or self._process.poll() is not None:
            return False
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            return False
        if sig == signal.SIGKILL:
            self._process.wait(10)
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> FunctionServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
