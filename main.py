"""Cloud Functions entry points. Each hands its request to the notifier package."""

import functions_framework
from cloudevents.http import CloudEvent

from notifier import pubsub


@functions_framework.cloud_event
def on_event(cloud_event: CloudEvent) -> None:
    """Pub/Sub "message published": returns to acknowledge, raises to have it redelivered."""
    pubsub.handle(cloud_event.data)
