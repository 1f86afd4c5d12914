"""``notifier heartbeat setup``: the heartbeat's Svix side, made right, and its signing secret.

Creates (or finds) the application ``notifier-heartbeat``, the event type ``notifier.heartbeat``
and the endpoint ``canary`` subscribed to that type only, then writes the endpoint's signing
secret to a file (mode 600) for deploy.sh to store in Secret Manager. Re-running it changes
nothing that is already right: each piece is read first and written only when it differs.
The order matters: Svix refuses an endpoint filtered on an event type that does not exist yet
(svix-server endpoint/crud.rs ``validate_event_types``).

The use case (:func:`setup`) talks to Svix through a small port
(:class:`~notifier.domain.ports.HeartbeatSvix`);
:class:`notifier.adapters.svix.heartbeat_admin.SvixHeartbeatAdmin` is that port on the svix SDK.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from notifier.domain.errors import SetupError
from notifier.domain.heartbeat import DEFAULT_PROJECT, EVENT_TYPE
from notifier.domain.ports import HeartbeatSvix

ENDPOINT_UID = "canary"
EVENT_TYPE_DESCRIPTION = "notifier's own heartbeat, delivered to its canary endpoint"
ENDPOINT_DESCRIPTION = "notifier canary: proves that heartbeats arrive"


@dataclass(frozen=True)
class SetupReport:
    """What setup found and did, step by step; safe to print (no secret in it)."""

    application: str  # "created" | "unchanged"
    event_type: str  # "created" | "unchanged"
    endpoint: str  # "created" | "updated" | "unchanged"
    secret_file: str  # "written" | "unchanged"
    app_uid: str
    canary_url: str
    secret_path: Path

    @property
    def changed(self) -> bool:
        """True when any step created, updated or wrote something."""
        steps = (self.application, self.event_type, self.endpoint, self.secret_file)
        return any(step != "unchanged" for step in steps)

    def lines(self) -> list[str]:
        """One line per step, for the plain report."""
        return [
            f"application {self.app_uid}: {self.application}",
            f"event type {EVENT_TYPE}: {self.event_type}",
            f"endpoint {ENDPOINT_UID} -> {self.canary_url}: {self.endpoint}",
            f"signing secret -> {self.secret_path} (mode 600): {self.secret_file}",
        ]


def setup(
    svix: HeartbeatSvix,
    *,
    canary_url: str,
    secret_file: Path,
    app_uid: str = DEFAULT_PROJECT,
) -> SetupReport:
    """Makes the heartbeat's Svix side right and writes the canary's signing secret."""
    url = checked_url(canary_url)
    application = "created" if svix.ensure_application(app_uid) else "unchanged"
    event_type = (
        "created" if svix.ensure_event_type(EVENT_TYPE, EVENT_TYPE_DESCRIPTION) else "unchanged"
    )
    wanted = [EVENT_TYPE]
    current = svix.get_endpoint(app_uid, ENDPOINT_UID)
    if current is None:
        svix.create_endpoint(app_uid, ENDPOINT_UID, url, wanted, ENDPOINT_DESCRIPTION)
        endpoint = "created"
    elif (
        not same_url(current.url, url)
        or current.filter_types != frozenset(wanted)
        or current.disabled
    ):
        svix.update_endpoint(app_uid, ENDPOINT_UID, url, wanted, ENDPOINT_DESCRIPTION)
        endpoint = "updated"
    else:
        endpoint = "unchanged"
    secret = svix.endpoint_secret(app_uid, ENDPOINT_UID)
    written = write_secret(secret_file, secret)
    return SetupReport(
        application=application,
        event_type=event_type,
        endpoint=endpoint,
        secret_file="written" if written else "unchanged",
        app_uid=app_uid,
        canary_url=url,
        secret_path=secret_file,
    )


def checked_url(url: str, *, flag: str = "--canary-url") -> str:
    """An absolute http(s) URL, as Svix requires of an endpoint (endpoint/mod.rs validate_url)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(f"{flag} must be an absolute http(s) URL")
    return url.strip()


def same_url(a: str, b: str) -> bool:
    """Equal as Svix stores them: it parses URLs (Rust ``url``), which lowercases the scheme and
    host and turns an empty path into ``/``; comparing raw strings would update on every run."""
    return _normal(a) == _normal(b)


def _normal(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, "")
    )


def write_secret(path: Path, secret: str) -> bool:
    """Writes ``secret`` to ``path``, readable by its owner only; False if it already held it.

    Written to a private temporary file in the same folder and renamed over ``path``, so the
    secret is never readable by others, not even for a moment, and a crash leaves the old file.
    """
    if not secret.startswith("whsec_"):
        raise SetupError("Svix returned a signing secret of an unknown kind (not whsec_)")
    try:
        if path.is_file() and path.read_text().strip() == secret:
            os.chmod(path, 0o600)
            return False
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc.strerror}") from None
    folder = path.parent if str(path.parent) else Path(".")
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secret + "\n")
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SetupError(f"cannot write {path}: {exc.strerror}") from None
    return True
