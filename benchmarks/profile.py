"""Where the served function's time goes: py-spy on its gunicorn worker, under load.

``python -m benchmarks.profile`` prints the split; ``make bench`` puts it in BENCHMARKS.md.
py-spy samples only the thread holding the GIL (``--gil``): in a process whose threads share
one GIL, that is where the throughput goes. Each sample is charged to the innermost frame that
belongs to a known layer (standard library frames are charged to their caller).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import events
from benchmarks.load import drive, http_worker
from benchmarks.procstat import children
from benchmarks.stack import Stack
from devstack.function_server import ROOT

LAYERS = (
    (
        "notifier (decode, validate, claim, send, record, log)",
        ("notifier/", "main.py", "jsonschema/", "rfc3339_validator.py"),
    ),
    (
        "Firestore client (google-cloud-firestore, api-core, gRPC, proto-plus)",
        ("google/", "grpc/", "proto/"),
    ),
    (
        "Svix client (svix SDK, httpx, httpcore, h11, pydantic)",
        ("svix/", "httpx/", "httpcore/", "h11/", "pydantic/", "pydantic_core/"),
    ),
    (
        "framework (gunicorn, Flask, Werkzeug, functions-framework, CloudEvents)",
        ("gunicorn/", "flask/", "werkzeug/", "functions_framework/", "cloudevents/", "blinker/"),
    ),
)
OTHER = "standard library only (thread pool, selectors, locks)"
_FILE = re.compile(r"\((.+?):\d+\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _file(frame: str) -> str:
    """The frame's file, relative to site-packages or to the project."""
    match = _FILE.search(frame)
    path = match.group(1) if match else ""
    path = path.rsplit("site-packages/", 1)[-1]
    return path.removeprefix(str(ROOT) + "/")


def layer_of(frames: list[str]) -> str:
    """The layer of the innermost frame (py-spy lists the leaf last) whose file belongs to one."""
    for frame in reversed(frames):
        path = _file(frame)
        for name, prefixes in LAYERS:
            if path.startswith(prefixes):
                return name
    return OTHER


def split(raw: str) -> tuple[Counter[str], int]:
    """py-spy's raw (collapsed) output -> samples per layer, and the total."""
    layers: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            layers[layer_of(stack.split(";"))] += int(count)
    return layers, sum(layers.values())


def profile(stack: Stack, events_count: int = 1500, concurrency: int = 32) -> dict:
    """Profiles new events through the served function; {} with a reason when it cannot."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy is not installed (pip install -r requirements-bench.txt)"}
    server = stack.server("on_event", concurrency, "profiled")
    drive([events.request(e) for e in events.events("prof-warm", 200)], 8, http_worker(server.url))
    workers = children(server._process.pid)
    if not workers:
        return {"error": "no gunicorn worker found"}
    out = Path(tempfile.mkdtemp(prefix="notifier-profile-")) / "raw.txt"
    command = [
        spy,
        "record",
        "--pid",
        str(workers[0]),
        "--gil",
        "--rate",
        "250",
        "--full-filenames",
    ]
    command += ["--format", "raw", "--output", str(out)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    if recorder.poll() is not None:
        return {"error": f"py-spy could not attach: {recorder.stderr.read().decode()[-300:]}"}
    batch = [events.request(e) for e in events.events("prof", events_count)]
    run = drive(batch, concurrency, http_worker(server.url))
    recorder.send_signal(signal.SIGINT)
    recorder.wait(30)
    server.stop()
    if not out.exists():
        return {"error": "py-spy wrote no profile"}
    layers, total = split(out.read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"layers": layers, "total": total, "events": events_count, "rate": run.rate}


def main() -> None:
    with Stack() as stack:
        result = profile(stack)
    if "error" in result:
        raise SystemExit(result["error"])
    print(f"{result['total']} samples over {result['events']} new events at concurrency 32")
    for name, count in result["layers"].most_common():
        print(f"{count / result['total']:6.1%}  {name}")


if __name__ == "__main__":
    main()
