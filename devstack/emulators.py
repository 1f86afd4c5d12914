"""Start and stop the real Firestore and Pub/Sub emulators (gcloud) for tests and ``make run``.

Each emulator runs in its own process group: ``gcloud ... start`` is a Python wrapper around a
shell script around a JVM, and killing the wrapper alone leaves the JVM running (and holding its
port). :meth:`Emulator.stop` therefore signals the whole group, and an ``atexit`` hook stops
whatever is still running when the interpreter exits (a crashed test session included; a
SIGKILLed one cannot be helped).

Output goes to a log file, never to the console; a start that fails raises with the log's tail.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_GRACE = 10.0
MIN_JAVA = 11

FIRESTORE_JAR = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
PUBSUB_JARS = "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"

# gcloud must never stop to ask a question or phone home: nobody reads its console.
_GCLOUD_ENV = {
    "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
}


class PrerequisiteError(RuntimeError):
    """gcloud, Java or an emulator component is missing; the message says how to install it."""


class EmulatorError(RuntimeError):
    """An emulator did not come up (the message carries the tail of its log)."""


# --- prerequisites ------------------------------------------------------------------------------

_prerequisites_ok = False


def sdk_root() -> Path | None:
    """The Cloud SDK root: found from the ``gcloud`` symlink, else (slower) from ``gcloud info``."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    candidate = Path(os.path.realpath(gcloud)).parent.parent
    if (candidate / "lib" / "gcloud.py").is_file():
        return candidate
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **_GCLOUD_ENV},
            stdin=subprocess.DEVNULL,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and Path(out).is_dir() else None


def java_major_version(java: str) -> int | None:
    """``java -version`` -> 17 (or 8 for the old ``1.8.0`` scheme); None if unparseable."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _install_hint(root: Path | None, components: list[str]) -> str:
    # apt/yum installs disable the component manager; the emulators are OS packages there.
    packages = {
        "cloud-firestore-emulator": "google-cloud-cli-firestore-emulator",
        "pubsub-emulator": "google-cloud-cli-pubsub-emulator",
        "beta": "google-cloud-cli (beta commands are part of it)",
    }
    if root is not None and str(root).startswith(("/usr/lib/", "/usr/share/")):
        names = " ".join(packages[c] for c in components)
        return f"sudo apt-get install {names}  (or: sudo dnf install {names})"
    return f"gcloud components install {' '.join(components)}"


def check_prerequisites() -> None:
    """Fails fast, with install instructions, instead of letting an emulator hang or half-start.

    Cheap (~0.1 s): looks for the emulator jars under the SDK root rather than running the slow
    ``gcloud components list``. Successful results are cached for the process.
    """
    global _prerequisites_ok
    if _prerequisites_ok:
        return
    problems: list[str] = []
    gcloud = shutil.which("gcloud")
    if not gcloud:
        problems.append(
            "gcloud is not on PATH: install the Google Cloud CLI "
            "(https://cloud.google.com/sdk/docs/install, or `apt-get install google-cloud-cli`)."
        )
    java = shutil.which("java")
    if not java:
        problems.append(
            f"java is not on PATH: the emulators need a Java {MIN_JAVA}+ runtime "
            "(e.g. `apt-get install openjdk-17-jre-headless`; 21+ recommended by gcloud)."
        )
    else:
        version = java_major_version(java)
        if version is None or version < MIN_JAVA:
            problems.append(
                f"{java} is Java {version or '(unknown version)'}; the emulators need "
                f"Java {MIN_JAVA}+ (e.g. `apt-get install openjdk-17-jre-headless`)."
            )
    if gcloud:
        root = sdk_root()
        if root is None:
            problems.append("cannot find the Cloud SDK root (`gcloud info` failed).")
        else:
            missing = []
            if not (root / FIRESTORE_JAR).is_file():
                missing.append("cloud-firestore-emulator")
            if not glob.glob(str(root / PUBSUB_JARS)):
                missing.append("pubsub-emulator")
            install_dir = root / ".install"
            if install_dir.is_dir() and not (install_dir / "beta.manifest").is_file():
                missing.append("beta")  # `gcloud beta emulators pubsub start`
            if missing:
                problems.append(
                    f"gcloud components missing under {root}: {', '.join(missing)}. "
                    f"Install with: {_install_hint(root, missing)}"
                )
    if problems:
        raise PrerequisiteError("Cannot run the emulators:\n  - " + "\n  - ".join(problems))
    _prerequisites_ok = True


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, from /proc; zombies hold no port."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: best effort
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    return [
        pid
        for pid, fields in proc_stats()
        if len(fields) >= 3 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid
    ]


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """Each live process's pid and its /proc stat fields after ``(comm)``: state, ppid, pgrp, ...

    ``comm`` may contain spaces and parentheses, hence the split at the last ``)``.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), stat[stat.rfind(")") + 2 :].split()


_running: set[Emulator] = set()
_running_lock = threading.Lock()
_log_dir: Path | None = None


def _default_log_dir() -> Path:
    global _log_dir
    with _running_lock:
        if _log_dir is None:
            _log_dir = Path(tempfile.mkdtemp(prefix="devstack-emulators-"))
        return _log_dir


@dataclass(eq=False)
class Emulator:
    """One running emulator; ``env`` is what its clients need (merge it into ``os.environ``)."""

    name: str
    project: str
    host_port: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    startup_seconds: float = 0.0
    data_dir: Path | None = field(default=None, repr=False)

    @property
    def pgid(self) -> int:
        """The emulator's process group id (it is the session leader: pgid == wrapper pid)."""
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def pids(self) -> list[int]:
        """Live processes of this emulator (the gcloud wrapper, a shell, the JVM)."""
        self.process.poll()  # reap the wrapper if it already exited
        return group_pids(self.pgid)

    def alive(self) -> bool:
        return bool(self.pids())

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the whole process group, SIGKILL it after ``grace`` seconds. Idempotent."""
        with _running_lock:
            _running.discard(self)
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not self.pids():
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        leftover = self.pids()
        if leftover:
            raise EmulatorError(f"{self.name} emulator processes survived SIGKILL: {leftover}")

    def reset(self, project: str | None = None) -> None:
        """Forgets all data of ``project`` (default: the one it was started for).

        Firestore: the emulator's documented DELETE endpoint. Pub/Sub has none, so every
        subscription and topic of the project is deleted (message ids keep counting up).
        """
        project = urllib.parse.quote(project or self.project)
        if self.name == "firestore":
            path = f"/emulator/v1/projects/{project}/databases/(default)/documents"
            _http(self.url + path, method="DELETE")
            return
        base = f"{self.url}/v1/projects/{project}"
        for kind in ("subscriptions", "topics"):
            token = ""
            names = []
            while True:
                query = f"?pageSize=1000&pageToken={urllib.parse.quote(token)}" if token else ""
                listing = json.loads(_http(f"{base}/{kind}{query}") or "{}")
                names += [item["name"] for item in listing.get(kind, [])]
                token = listing.get("nextPageToken", "")
                if not token:
                    break
            for name in names:
                with contextlib.suppress(urllib.error.HTTPError):  # already gone
                    _http(f"{self.url}/v1/{name}", method="DELETE")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(eq=False)
class Attached:
    """A Firestore emulator another process started and will stop (``make mutate`` starts one
    for every mutant's test run): used as :class:`Emulator` is, never stopped from here."""

    project: str
    host_port: str
    name: str = "firestore"

    @property
    def env(self) -> dict[str, str]:
        return {"FIRESTORE_EMULATOR_HOST": self.host_port}

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    reset = Emulator.reset


def _http(url: str, method: str = "GET", timeout: float = 10.0) -> str:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


def _is_ready(url: str) -> bool:
    """Both emulators answer ``GET /`` with ``Ok`` once they accept requests."""
    try:
        return _http(url + "/", timeout=1.0).strip() == "Ok"
    except (OSError, ValueError):
        return False


# The Pub/Sub JVM does not exit when it cannot bind its port: it logs and hangs. Spot that.
_PORT_IN_USE = re.compile(r"BindException|Address already in use")
_MAIN_DIED = re.compile(r'Exception in thread "main"')


def _fatal_error(log_path: Path, offset: int) -> str | None:
    """The fatal startup error this start wrote to the log, if any."""
    try:
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return None
    if _PORT_IN_USE.search(text):
        return "port already in use"
    if _MAIN_DIED.search(text):
        return "the emulator's main thread died"
    return None


@atexit.register
def stop_all() -> None:
    """Stops every emulator this process started and has not stopped yet."""
    with _running_lock:
        emulators = list(_running)
    for emulator in emulators:
        with contextlib.suppress(Exception):
            emulator.stop(grace=5.0)


def _start(
    name: str,
    project: str,
    args: list[str],
    env: dict[str, str],
    port: int | None,
    log_path: Path | None,
    ready_timeout: float,
    data_dir: Path | None = None,
) -> Emulator:
    check_prerequisites()
    gcloud = shutil.which("gcloud")
    assert gcloud is not None  # checked above
    attempts = 1 if port else 3  # a picked port can be taken before the JVM binds it
    for attempt in range(1, attempts + 1):
        chosen = port or free_port()
        host_port = f"{HOST}:{chosen}"
        path = log_path or _default_log_dir() / f"{name}-{chosen}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        offset = path.stat().st_size if path.exists() else 0
        with path.open("ab") as log:
            log.write(f"--- devstack: starting {name} emulator on {host_port}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [gcloud, *args, f"--host-port={host_port}", "--quiet"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **_GCLOUD_ENV},
            )
        emulator = Emulator(
            name=name,
            project=project,
            host_port=host_port,
            env={key: value.replace("{host_port}", host_port) for key, value in env.items()},
            log_path=path,
            process=process,
            data_dir=data_dir,
        )
        with _running_lock:
            _running.add(emulator)
        deadline = started + ready_timeout
        fatal = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            ready = _is_ready(emulator.url)
            # Check the log even when "ready": another process may own the port we asked for.
            fatal = _fatal_error(path, offset)
            if fatal:
                break
            if ready and process.poll() is None:
                emulator.startup_seconds = time.monotonic() - started
                return emulator
            time.sleep(0.1)
        exited = process.poll()
        emulator.stop(grace=2.0)
        tail = emulator.log_tail()
        if attempt < attempts and fatal and "in use" in fatal:
            continue
        if fatal:
            reason = f"failed ({fatal})"
        elif exited is not None:
            reason = f"exited with status {exited}"
        else:
            reason = "not ready"
        raise EmulatorError(
            f"{name} emulator on {host_port} {reason} after {time.monotonic() - started:.1f}s "
            f"(timeout {ready_timeout:.0f}s). Log {path}, last lines:\n{tail}"
        )
    raise AssertionError("unreachable")


def start_firestore(
    project: str,
    port: int | None = None,
    log_path: Path | None = None,
    *,
    ready_timeout: float = READY_TIMEOUT,
) -> Emulator:
    """The Firestore emulator (native mode); clients find it through FIRESTORE_EMULATOR_HOST."""
    return _start(
        "firestore",
        project,
        ["emulators", "firestore", "start", "--database-mode=firestore-native"],
        {"FIRESTORE_EMULATOR_HOST": "{host_port}"},
        port,
        log_path,
        ready_timeout,
    )


def start_pubsub(
    project: str,
    port: int | None = None,
    log_path: Path | None = None,
    *,
    ready_timeout: float = READY_TIMEOUT,
) -> Emulator:
    """The Pub/Sub emulator, with a private data dir (the default one is shared per user)."""
    # gcloud writes env.yaml into --data-dir and fails if the directory does not exist yet.
    data_dir = Path(tempfile.mkdtemp(prefix="devstack-pubsub-data-"))
    args = [
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--project={project}",
        f"--data-dir={data_dir}",
    ]
    try:
        return _start(
            "pubsub",
            project,
            args,
            {"PUBSUB_EMULATOR_HOST": "{host_port}", "PUBSUB_PROJECT_ID": project},
            port,
            log_path,
            ready_timeout,
            data_dir=data_dir,
        )
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
