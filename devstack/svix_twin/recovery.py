"""`POST /api/v1/app/{app}/endpoint/{endpoint}/recover`: v1/endpoints/endpoint/recovery.rs
`recover_failed_webhooks` (spec v1.endpoint.recover, RecoverIn -> 202 RecoverOut)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.svix_twin import endpoints
from devstack.svix_twin import validation as v
from devstack.svix_twin.answers import Answer, Refusal, item, json_answer, not_found, validation
from devstack.svix_twin.delivery import Deliveries
from devstack.svix_twin.store import Db, new_id

MAX_TIMEFRAME = timedelta(days=14, minutes=5)  # "so that people can just do now() - two_weeks"


def recover(db: Db, deliveries: Deliveries, app_ref: str, ref: str, body: Any) -> Answer:
    """Re-sends (manual attempts, no retries) each message whose attempts to the endpoint in
    [since, until) all failed; a disabled endpoint gets nothing (filtered_endpoints)."""
    app = endpoints.owning_app(db, app_ref)
    data = v.recover_in(body)
    now = db.clock.utcnow()
    until = data["until"] or now
    if data["since"] < until - MAX_TIMEFRAME:
        msg = f"Cannot recover more than {MAX_TIMEFRAME.days} days of messages"
        raise Refusal(validation([item(["body", "since"], msg)]))
    endpoint = endpoints.find(db, app["id"], ref)
    if endpoint is None:
        raise Refusal(not_found())
    deliveries.recover(app["id"], endpoint["id"], data["since"], until)
    return json_answer(
        202,
        {
            "id": new_id("qtask_"),
            "status": "running",
            "task": "endpoint.recover",
            "updatedAt": db.clock.iso(),
        },
    )
