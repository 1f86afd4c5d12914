"""Configuration: defaults, overrides, and one clear message when wrong."""

import re

import pytest

from notifier.config import LEASE_MIN_SECONDS, RECORDING_SECONDS, ConfigError, Deployment, Settings

BASE = {"GOOGLE_CLOUD_PROJECT": "demo", "SVIX_API_KEY": "testsk_secret_value"}


def test_defaults():
    settings = Settings.from_env(BASE)
    assert settings.firestore_database == "(default)"
    assert settings.svix_server_url is None
    # Short, renewed while its delivery runs: a crashed holder's event is free in seconds.
    assert settings.lease_seconds == LEASE_MIN_SECONDS == 10
    assert settings.lease_seconds < settings.longest_delivery_seconds


def test_overrides():
    settings = Settings.from_env(
        BASE
        | {
            "SVIX_SERVER_URL": "http://127.0.0.1:1",
            "FIRESTORE_DATABASE": "notifier",
            "NOTIFIER_RETRY_BUDGET_SECONDS": "5",
            "NOTIFIER_SVIX_TIMEOUT_SECONDS": "2",
            "NOTIFIER_LEASE_SECONDS": "30",
            "NOTIFIER_SVIX_RETRY_SCHEDULE": "0.01,0.02",
        }
    )
    assert settings.svix_server_url == "http://127.0.0.1:1"
    assert settings.retry_budget_seconds == 5.0
    assert settings.svix_retry_schedule == (0.01, 0.02)


def test_all_problems_in_one_message_without_the_secret():
    env = {"SVIX_API_KEY": "testsk_secret_value", "NOTIFIER_RETRY_BUDGET_SECONDS": "lots"}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert "GOOGLE_CLOUD_PROJECT" in message and "NOTIFIER_RETRY_BUDGET_SECONDS" in message
    assert "testsk_secret_value" not in message
    assert "testsk_secret_value" not in repr(Settings.from_env(BASE))


def test_missing_token_is_named():
    with pytest.raises(ConfigError, match="SVIX_API_KEY"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo"})


def test_a_lease_under_ten_seconds_is_refused():
    with pytest.raises(ConfigError, match="NOTIFIER_LEASE_SECONDS must be at least 10"):
        Settings.from_env(BASE | {"NOTIFIER_LEASE_SECONDS": "9.5"})
    assert Settings.from_env(BASE | {"NOTIFIER_LEASE_SECONDS": "10"}).lease_seconds == 10


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("", True),
        ("3600", True),
        ("604800", True),
        ("3599", False),
        ("604801", False),
        ("soon", False),
    ],
)
def test_portal_link_expiry_must_be_within_svix_range(raw, ok):
    env = BASE | {"NOTIFIER_PORTAL_EXPIRY_SECONDS": raw}
    if ok:
        assert Settings.from_env(env).portal_expiry_seconds == int(raw or 3600)
    else:
        with pytest.raises(ConfigError, match="NOTIFIER_PORTAL_EXPIRY_SECONDS"):
            Settings.from_env(env)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", 72000.0),
        ("0", 0.0),
        ("43200", 43200.0),
        ("82800", 82800.0),
        ("82801", None),
        ("86400", None),
        ("-1", None),
        ("a day", None),
    ],
)
def test_the_svix_dedup_window_stays_under_svix_one_day_event_id_window(raw, expected):
    env = BASE | {"NOTIFIER_SVIX_DEDUP_WINDOW_SECONDS": raw}
    if expected is not None:
        assert Settings.from_env(env).svix_dedup_window_seconds == expected
    else:
        with pytest.raises(ConfigError, match="NOTIFIER_SVIX_DEDUP_WINDOW_SECONDS"):
            Settings.from_env(env)


def test_svix_only_settings_need_no_google_project_but_still_a_token():
    env = {"SVIX_API_KEY": "testsk_x", "NOTIFIER_SVIX_TIMEOUT_SECONDS": "3"}
    settings = Settings.from_env(env, firestore=False)
    assert (settings.gcp_project, settings.svix_timeout_seconds) == ("", 3.0)
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT is not set"):
        Settings.from_env(env)
    with pytest.raises(ConfigError, match="SVIX_API_KEY is not set"):
        Settings.from_env({}, firestore=False)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_number_that_is_none_is_refused(raw):
    with pytest.raises(ConfigError, match="NOTIFIER_LEASE_SECONDS must be a number"):
        Settings.from_env(BASE | {"NOTIFIER_LEASE_SECONDS": raw})


def test_the_default_deployment_holds_config_py_s_own_rules():
    deployment = Deployment(Settings.from_env(BASE))
    deployment.check()
    longest = deployment.settings.longest_delivery_seconds
    assert longest + RECORDING_SECONDS <= deployment.timeout_seconds


@pytest.mark.parametrize(
    ("timeout", "lease", "refused"),
    [
        (71, 10, "longest delivery (70.35 s"),  # no second left to record the outcome
        (72, 10, None),
        (90, 10, None),  # the lease is renewed: the timeout no longer bounds it
        (540, 120, None),
    ],
)
def test_the_functions_timeout_exceeds_the_longest_delivery_whatever_the_lease(
    timeout, lease, refused
):
    settings = Settings.from_env(BASE | {"NOTIFIER_LEASE_SECONDS": str(lease)})
    deployment = Deployment(settings, timeout_seconds=timeout)
    if refused is None:
        deployment.check()
        return
    with pytest.raises(ConfigError, match=re.escape(refused)) as caught:
        deployment.check()
    assert str(caught.value).startswith("notifier is misconfigured: ")
