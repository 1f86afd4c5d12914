"""Cold start: importing ``main`` against the bare import of its four runtime dependencies, the
proof that importing it opens no connection, and the time until a new instance serves an event.

Every figure comes from fresh interpreter processes, several runs each, alternated so that the
machine's noise falls on both sides alike; medians are reported.
"""

from __future__ import annotations

import compileall
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from benchmarks import events, stats
from benchmarks.stack import Stack
from devstack.function_server import ROOT, free_port

BARE = "import functions_framework, google.cloud.firestore, jsonschema, svix"
MAIN = "import main"
# Times the import inside the child too: the process figure adds the interpreter's own start.
_TIMED = "import time; _t = time.perf_counter(); {stmt}; print(time.perf_counter() - _t)"
# Imports main with every service address pointing at a closed port, and reports what opened.
_PROBE = """
import json, os, socket, threading, time
opened = []
for name in ("connect", "connect_ex"):
    original = getattr(socket.socket, name)
    def spy(self, address, _original=original):
        opened.append(str(address))
        return _original(self, address)
    setattr(socket.socket, name, spy)
def sockets():
    fds = os.listdir("/proc/self/fd")
    return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:") for fd in fds
               if os.path.exists(f"/proc/self/fd/{fd}"))
before, threads = sockets(), threading.active_count()
import main
time.sleep(0.5)  # time for any background connection to start
from notifier import bootstrap
print(json.dumps({"connects": opened, "sockets_before": before, "sockets_after": sockets(),
                  "threads_before": threads, "threads_after": threading.active_count(),
                  "clients_built": bootstrap.built() is not None}))
"""


@dataclass
class ColdStart:
    runs: int
    main_process: list[float] = field(default_factory=list)
    bare_process: list[float] = field(default_factory=list)
    main_import: list[float] = field(default_factory=list)
    bare_import: list[float] = field(default_factory=list)
    main_after_bare: list[float] = field(default_factory=list)  # what main adds to the deps
    deps_then_main: list[float] = field(default_factory=list)  # that process, whole
    extra_modules: list[str] = field(default_factory=list)
    probe: dict = field(default_factory=dict)
    listening: list[float] = field(default_factory=list)  # process start -> port open
    first_event: list[float] = field(default_factory=list)  # process start -> first 200
    first_request: list[float] = field(default_factory=list)  # the first POST alone
    second_request: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Median of the runs' ratios, each from one process that imports the four dependencies
        and then ``main``: the whole process against itself without main's share, so that both
        sides of a ratio met the same second of the machine (two processes do not)."""
        return stats.median(
            [
                whole / (whole - added)
                for whole, added in zip(self.deps_then_main, self.main_after_bare, strict=True)
            ]
        )

    @property
    def process_ratios(self) -> list[float]:
        """Each ``main`` process against the bare one run beside it."""
        return [m / b for m, b in zip(self.main_process, self.bare_process, strict=True)]

    @property
    def process_ratio(self) -> float:
        return stats.median(self.process_ratios)

    @property
    def import_ratio(self) -> float:
        return stats.median(
            [m / b for m, b in zip(self.main_import, self.bare_import, strict=True)]
        )


def _python(code: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, done.stdout.strip()


def _clean_env(**extra: str) -> dict[str, str]:
    """The child's environment without the emulator and Svix addresses of the benchmark."""
    drop = ("FIRESTORE_EMULATOR_HOST", "SVIX_SERVER_URL", "SVIX_API_KEY")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def compile_sources() -> None:
    """Byte-compiles ``main`` and the package, as pip compiles the dependencies at install: both
    sides of the comparison then load bytecode, whatever the environment says about writing it
    (``PYTHONDONTWRITEBYTECODE`` would otherwise make every fresh process compile ours alone)."""
    compiled = compileall.compile_file(ROOT / "main.py", quiet=1)
    compiled = compileall.compile_dir(ROOT / "notifier", quiet=1) and compiled
    if not compiled:
        raise RuntimeError("main.py or notifier/ does not compile")


def imports(runs: int) -> ColdStart:
    compile_sources()
    result = ColdStart(runs)
    for run in range(runs):
        pair = [
            (MAIN, result.main_process, result.main_import),
            (BARE, result.bare_process, result.bare_import),
        ]
        for stmt, process, inner in pair[:: 1 if run % 2 == 0 else -1]:  # each first in turn
            seconds, out = _python(_TIMED.format(stmt=stmt))
            process.append(seconds)
            inner.append(float(out))
        whole, out = _python(
            f"{BARE}\nimport sys, time, json\nbefore = set(sys.modules)\n"
            "t = time.perf_counter(); import main; t = time.perf_counter() - t\n"
            "print(json.dumps([t, sorted({m.split('.')[0] for m in set(sys.modules) - before})]))"
        )
        seconds, modules = json.loads(out)
        result.main_after_bare.append(seconds)
        result.deps_then_main.append(whole)
        result.extra_modules = modules
    return result


def probe() -> dict:
    """Imports main with Firestore and Svix addresses on a closed port: nothing may connect."""
    closed = free_port()  # bound and released: nothing listens there
    env = _clean_env(
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{closed}",
        SVIX_SERVER_URL=f"http://127.0.0.1:{closed}",
        SVIX_API_KEY="testsk_probe",
        GOOGLE_CLOUD_PROJECT="probe",
    )
    _, out = _python(_PROBE, env)
    return json.loads(out)


def first_events(stack: Stack, result: ColdStart, runs: int) -> None:
    """A new instance per run: process start until it listens, and until its first 200."""
    compile_sources()
    _serve_once(stack, "coldstart-warm")  # the project's application exists, as in steady state
    for run in range(runs):
        listening, first, second = _serve_once(stack, f"coldstart-{run}")
        result.listening.append(listening)
        result.first_request.append(first)
        result.first_event.append(listening + first)
        result.second_request.append(second)


def _serve_once(stack: Stack, label: str) -> tuple[float, float, float]:
    port = free_port()
    env = {**os.environ, **stack.env(), "PYTHONUNBUFFERED": "1", "THREADS": "8"}
    command = [
        sys.executable,
        "-m",
        "functions_framework",
        "--target=on_event",
        "--signature-type=cloudevent",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    batch = events.events(label, 2)
    started = time.perf_counter()
    with (stack.logs / f"{label}.log").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        listening = _wait_listening(port, process, started) - started
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        timings = []
        for event in batch:
            headers, body = events.request(event)
            sent = time.perf_counter()
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"cold start {label}: HTTP {response.status}")
            timings.append(time.perf_counter() - sent)
        connection.close()
        return listening, timings[0], timings[1]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _wait_listening(port: int, process: subprocess.Popen, started: float) -> float:
    while time.perf_counter() - started < 60:
        if process.poll() is not None:
            raise RuntimeError("functions-framework exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return time.perf_counter()
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("functions-framework did not listen within 60 s")
