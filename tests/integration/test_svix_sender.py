"""The Svix adapter through the real SDK against the twin: every answer class."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from svix.api import MessageIn, Svix, SvixOptions

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.messages import SvixSender
from notifier.domain.decoding import event_from
from notifier.domain.errors import (
    BadCredentials,
    Permanent,
    RateLimited,
    SvixConflict,
    SvixUnavailable,
)
from tests import factories
from tests.conftest import TOKEN


def sender_for(svix, token=TOKEN, timeout=2.0):
    client = SvixClient(token, server_url=svix.url, timeout=timeout, retry_schedule=(0.01, 0.02))
    return SvixSender(client)


def an_event(**overrides):
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**21)


@pytest.fixture
def app(svix):
    return sender_for(svix).ensure_application("acme")


def test_the_project_application_is_created_once_with_uid_and_name(svix):
    sender = sender_for(svix)
    first, second = sender.ensure_application("acme"), sender.ensure_application("acme")
    assert first == second and first.startswith("app_")
    assert [(a["uid"], a["name"]) for a in svix.apps()] == [("acme", "acme")]


def test_an_event_becomes_one_message_with_its_type_id_payload_and_a_fixed_key(svix, app):
    event = an_event()
    sent = sender_for(svix).send(event)
    assert (sent.status, sent.message_id.startswith("msg_")) == (202, True)
    [message] = svix.messages()
    assert (message["eventType"], message["eventId"], message["payload"]) == (
        event.type,
        event.id,
        event.payload,
    )
    assert message["idempotency_key"] == f"notifier-{event.id}"


def test_an_existing_event_id_is_a_conflict_recorded_with_the_existing_message(svix, app):
    event = an_event()
    # Svix already has this eventId under another key (its idempotency window is shorter).
    svix_client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    existing = svix_client.message.create(
        "acme", MessageIn(event_type=event.type, event_id=event.id, payload={"early": True})
    )
    again = sender_for(svix).send(event)
    assert (again.status, again.message_id) == (409, existing.id)
    assert len(svix.messages()) == 1


def test_rate_limit_carries_retry_after(svix, app):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 7, "times": 1}])
    with pytest.raises(RateLimited) as caught:
        sender_for(svix).send(an_event())
    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert svix.messages() == []


def test_server_errors_are_retried_by_the_sdk_then_succeed(svix, app):
    svix.set_faults([{"op": "msg.create", "status": 503, "times": 2}])
    assert sender_for(svix).send(an_event()).status == 202
    assert [c["retry_count"] for c in svix.calls() if c["op"] == "msg.create"] == [0, 1, 2]


def test_persistent_server_errors_are_transient(svix, app):
    svix.set_faults([{"op": "msg.create", "status": 500}])
    with pytest.raises(SvixUnavailable) as caught:
        sender_for(svix).send(an_event())
    assert caught.value.status == 500


def test_a_non_json_error_body_is_transient_with_its_status(svix, app):
    svix.set_faults([{"op": "msg.create", "status": 502, "body": "<html>bad gateway</html>"}])
    with pytest.raises(SvixUnavailable) as caught:
        sender_for(svix).send(an_event())
    assert (caught.value.status, caught.value.detail) == (502, "unreadable answer")


def test_a_slow_answer_is_a_timeout(svix, app):
    svix.set_faults([{"op": "msg.create", "delay": 1.5}])
    with pytest.raises(SvixUnavailable, match="timeout"):
        sender_for(svix, timeout=0.3).send(an_event())


def test_an_answer_lost_after_acceptance_is_replayed_not_sent_twice(svix, app):
    svix.set_faults([{"op": "msg.create", "lost": True, "times": 1}])
    sent = sender_for(svix).send(an_event())
    assert sent.status == 202
    assert [m["id"] for m in svix.messages()] == [sent.message_id]


@pytest.mark.parametrize("token", ["testsk_wrong"])
def test_bad_credentials(svix, app, token):
    with pytest.raises(BadCredentials) as caught:
        sender_for(svix, token=token).send(an_event())
    assert caught.value.status == 401
    assert token not in caught.value.summary() and TOKEN not in caught.value.summary()


@pytest.mark.parametrize("status", [400, 404, 422])
def test_permanent_refusals(svix, app, status):
    svix.set_faults([{"op": "msg.create", "status": status, "times": 1}])
    with pytest.raises(Permanent) as caught:
        sender_for(svix).send(an_event())
    assert caught.value.status == status


def test_a_missing_application_is_created_with_the_message(svix):
    sent = sender_for(svix).send(an_event(project="newco"))
    assert sent.status == 202
    assert [(a["uid"], a["name"]) for a in svix.apps()] == [("newco", "newco")]
    assert [m["app_uid"] for m in svix.messages()] == ["newco"]


def test_payload_over_one_mebibyte_is_permanent(svix, app):
    big = an_event(data={"blob": "x" * (1024 * 1024 + 10)})
    with pytest.raises(Permanent) as caught:
        sender_for(svix).send(big)
    assert caught.value.status == 413


# -- issue 8: which conflict a 409 was -------------------------------------------------------


def racing(calls):
    """Runs the calls at the same moment; each one's result or the error it raised."""

    def attempt(call):
        try:
            return call()
        except Exception as exc:  # the error is the answer under test
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(attempt, calls))


def test_a_message_409_from_the_application_race_is_a_conflict_not_a_send(svix):
    svix.configure(app_create_race_seconds=0.3)
    sender, events = sender_for(svix), [an_event(project="new"), an_event(project="new")]
    results = racing([lambda e=e: sender.send(e) for e in events])

    conflicted = [r for r in results if isinstance(r, SvixConflict)]
    assert len(conflicted) == 1 and conflicted[0].status == 409
    assert [r.status for r in results if not isinstance(r, Exception)] == [202]
    assert len(svix.messages()) == 1  # the loser's event is not in Svix: it must not be "sent"
    [lookup] = [c for c in svix.calls() if c["op"] == "msg.get"]
    assert lookup["status"] == 404


def test_find_looks_the_message_up_by_event_id(svix, app):
    sender, event = sender_for(svix), an_event()
    assert sender.find(event) is None
    sent = sender.send(event)
    found = sender.find(event)
    assert (found.message_id, found.status) == (sent.message_id, 200)
    assert sender_for(svix).find(an_event(project="no-such-app")) is None


def test_a_lookup_that_fails_is_never_not_found(svix, app):
    svix.set_faults([{"op": "msg.get", "status": 500}])
    with pytest.raises(SvixUnavailable):
        sender_for(svix).find(an_event())
    svix.set_faults([{"op": "msg.get", "status": 403}])
    with pytest.raises(BadCredentials):
        sender_for(svix).find(an_event())
    svix.set_faults([{"op": "msg.get", "status": 400}])
    with pytest.raises(SvixUnavailable, match="lookup refused"):
        sender_for(svix).find(an_event())


def test_an_application_creation_race_is_a_conflict_and_the_next_call_finds_it(svix):
    svix.configure(app_create_race_seconds=0.3)
    sender = sender_for(svix)
    results = racing([lambda: sender.ensure_application("fresh")] * 2)

    assert sorted(type(r).__name__ for r in results) == ["SvixConflict", "str"]
    winner = next(r for r in results if isinstance(r, str))
    assert sender.ensure_application("fresh") == winner


def test_a_portal_link_racing_the_application_creation_is_a_conflict(svix):
    svix.configure(app_create_race_seconds=0.3)
    sender = sender_for(svix)
    results = racing([lambda: sender.portal_link("portal", 3600)] * 2)

    assert sorted(type(r).__name__ for r in results) == ["SvixConflict", "str"]
    assert sender.portal_link("portal", 3600).startswith(svix.url)
