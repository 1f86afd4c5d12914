"""What the figures were measured on: the machine, the software, and how busy the machine was."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from devstack.function_server import ROOT

PACKAGES = (
    "functions-framework",
    "google-cloud-firestore",
    "jsonschema",
    "svix",
    "grpcio",
    "protobuf",
    "httpx",
    "gunicorn",
    "flask",
)
# Format checkers jsonschema imports whenever they are installed (jsonschema/_format.py).
JSONSCHEMA_OPTIONAL = (
    "rfc3987_syntax",
    "rfc3987",
    "rfc3986_validator",
    "rfc3339_validator",
    "idna",
    "jsonpointer",
    "uri_template",
    "isoduration",
    "fqdn",
    "webcolors",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def describe() -> dict[str, str]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    memory = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory.group(1)) / 1024 / 1024:.1f} GiB" if memory else "unknown",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "java": _java(),
        "packages": ", ".join(f"{name} {version}" for name, version in versions.items()),
    }


def _java() -> str:
    java = shutil.which("java")
    if not java:
        return "-"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else "-"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def jsonschema_extras() -> list[tuple[str, float, bool]]:
    """(module, import seconds, listed in requirements.txt) of the optional format checkers
    installed here: jsonschema imports each at import time, on every cold start."""
    present = [name for name in JSONSCHEMA_OPTIONAL if importlib.util.find_spec(name)]
    if not present:
        return []
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import jsonschema"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    cumulative = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            cumulative[parts[2].strip()] = int(parts[1]) / 1e6
    required = (ROOT / "requirements.txt").read_text().lower().replace("-", "_")
    return [(name, cumulative.get(name, 0.0), name.lower() in required) for name in present]
