"""``heartbeat setup`` over an in-memory Svix: it makes things right once, then changes nothing."""

from __future__ import annotations

import os
import stat
from urllib.parse import urlsplit, urlunsplit

import pytest

from notifier.domain.errors import SetupError
from notifier.domain.heartbeat import EndpointState
from notifier.usecases.heartbeat_setup import same_url, setup, write_secret

URL = "https://notifier-canary-abc123-ew.a.run.app"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class MemorySvix:
    """The port, keeping what real Svix keeps the way it keeps it: URLs parsed (an empty path
    becomes "/"), filters as sets, a filter on an unknown event type refused (422)."""

    def __init__(self) -> None:
        self.apps: set[str] = set()
        self.event_types: set[str] = set()
        self.endpoints: dict[tuple[str, str], EndpointState] = {}
        self.secrets: dict[tuple[str, str], str] = {}
        self.writes: list[str] = []

    def ensure_application(self, uid: str) -> bool:
        if uid in self.apps:
            return False
        self.apps.add(uid)
        self.writes.append(f"create app {uid}")
        return True

    def ensure_event_type(self, name: str, description: str) -> bool:
        if name in self.event_types:
            return False
        self.event_types.add(name)
        self.writes.append(f"create event type {name}")
        return True

    def get_endpoint(self, app_uid, endpoint_uid):
        return self.endpoints.get((app_uid, endpoint_uid))

    def _check(self, app_uid, filter_types):
        if app_uid not in self.apps:
            raise SetupError("Svix answered 404")
        if not set(filter_types) <= self.event_types:
            raise SetupError("Svix answered 422")

    def create_endpoint(self, app_uid, endpoint_uid, url, filter_types, description):
        self._check(app_uid, filter_types)
        self.endpoints[(app_uid, endpoint_uid)] = EndpointState(
            parsed(url), frozenset(filter_types), False
        )
        self.secrets[(app_uid, endpoint_uid)] = SECRET
        self.writes.append(f"create endpoint {endpoint_uid}")

    def update_endpoint(self, app_uid, endpoint_uid, url, filter_types, description):
        self._check(app_uid, filter_types)
        self.endpoints[(app_uid, endpoint_uid)] = EndpointState(
            parsed(url), frozenset(filter_types), False
        )
        self.writes.append(f"update endpoint {endpoint_uid}")

    def endpoint_secret(self, app_uid, endpoint_uid):
        return self.secrets[(app_uid, endpoint_uid)]


def parsed(url):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


@pytest.fixture
def svix():
    return MemorySvix()


def test_a_first_run_creates_everything_and_writes_the_secret_privately(svix, tmp_path):
    path = tmp_path / "canary-secret"
    report = setup(svix, canary_url=URL, secret_file=path)
    assert svix.writes == [
        "create app notifier-heartbeat",
        "create event type notifier.heartbeat",
        "create endpoint canary",
    ]
    endpoint = svix.endpoints[("notifier-heartbeat", "canary")]
    assert endpoint.filter_types == {"notifier.heartbeat"}
    assert same_url(endpoint.url, URL)
    assert path.read_text().strip() == SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (report.application, report.event_type, report.endpoint, report.secret_file) == (
        "created",
        "created",
        "created",
        "written",
    )
    assert report.changed


def test_a_second_run_changes_nothing(svix, tmp_path):
    path = tmp_path / "canary-secret"
    setup(svix, canary_url=URL, secret_file=path)
    before = (list(svix.writes), path.stat().st_mtime_ns, path.stat().st_ino)
    report = setup(svix, canary_url=URL, secret_file=path)
    assert (svix.writes, path.stat().st_mtime_ns, path.stat().st_ino) == before
    assert not report.changed
    assert all(line.endswith(": unchanged") for line in report.lines())


def test_a_new_canary_url_updates_the_endpoint_and_keeps_its_secret(svix, tmp_path):
    path = tmp_path / "canary-secret"
    setup(svix, canary_url=URL, secret_file=path)
    report = setup(svix, canary_url="https://canary.example.com/hook", secret_file=path)
    assert svix.writes[-1] == "update endpoint canary"
    assert svix.endpoints[("notifier-heartbeat", "canary")].url == "https://canary.example.com/hook"
    assert (report.endpoint, report.secret_file) == ("updated", "unchanged")


@pytest.mark.parametrize(
    "state",
    [
        EndpointState(URL + "/", None, False),  # subscribed to everything
        EndpointState(URL + "/", frozenset({"notifier.heartbeat", "user.created"}), False),
        EndpointState(URL + "/", frozenset({"notifier.heartbeat"}), True),  # disabled by Svix
    ],
)
def test_a_wrong_filter_or_a_disabled_endpoint_is_put_right(svix, tmp_path, state):
    svix.apps.add("notifier-heartbeat")
    svix.event_types.update({"notifier.heartbeat", "user.created"})
    svix.endpoints[("notifier-heartbeat", "canary")] = state
    svix.secrets[("notifier-heartbeat", "canary")] = SECRET
    report = setup(svix, canary_url=URL, secret_file=tmp_path / "s")
    assert report.endpoint == "updated"
    fixed = svix.endpoints[("notifier-heartbeat", "canary")]
    assert (fixed.filter_types, fixed.disabled) == (frozenset({"notifier.heartbeat"}), False)


def test_urls_compare_as_svix_stores_them():
    assert same_url("https://Canary.Example.com", "https://canary.example.com/")
    assert not same_url("https://canary.example.com/a", "https://canary.example.com/b")
    assert not same_url("http://canary.example.com/", "https://canary.example.com/")


@pytest.mark.parametrize("bad", ["canary.example.com", "ftp://x/", "https://", "/hook", ""])
def test_a_canary_url_svix_would_refuse_is_refused_before_any_call(svix, tmp_path, bad):
    with pytest.raises(SetupError, match="--canary-url"):
        setup(svix, canary_url=bad, secret_file=tmp_path / "s")
    assert svix.writes == []


def test_the_app_and_project_are_options(svix, tmp_path):
    setup(svix, canary_url=URL, secret_file=tmp_path / "s", app_uid="hb-staging")
    assert ("hb-staging", "canary") in svix.endpoints


def test_a_secret_file_open_to_others_is_replaced_by_a_private_one(tmp_path):
    path = tmp_path / "canary-secret"
    path.write_text("whsec_old\n")
    os.chmod(path, 0o644)
    assert write_secret(path, SECRET) is True
    assert path.read_text() == SECRET + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["canary-secret"]  # no temporary left


def test_an_unchanged_secret_file_is_still_made_private(tmp_path):
    path = tmp_path / "canary-secret"
    path.write_text(SECRET + "\n")
    os.chmod(path, 0o644)
    assert write_secret(path, SECRET) is False
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unwritable_secret_file_is_a_setup_error_without_the_secret(tmp_path):
    with pytest.raises(SetupError) as caught:
        write_secret(tmp_path / "missing-folder" / "s", SECRET)
    assert SECRET not in str(caught.value)
    assert "cannot write" in str(caught.value)


def test_a_secret_of_an_unknown_kind_is_not_written(tmp_path):
    with pytest.raises(SetupError) as caught:
        write_secret(tmp_path / "s", "sk_live_abcdef")
    assert "sk_live_abcdef" not in str(caught.value)
    assert not (tmp_path / "s").exists()


def test_nothing_secret_is_in_the_report(svix, tmp_path):
    report = setup(svix, canary_url=URL, secret_file=tmp_path / "s")
    text = "\n".join(report.lines()) + repr(report)
    assert SECRET not in text and SECRET.removeprefix("whsec_") not in text
