"""Cloud Functions entry points. Each fetches the instance's dependencies (built lazily on first
use, so importing this module opens no connection) and hands them to the notifier package."""

import flask
import functions_framework
from cloudevents.http import CloudEvent

from notifier import bootstrap, logs
from notifier.handlers import app_portal as portal_handler
from notifier.handlers import canary as canary_handler
from notifier.handlers import http_guard, pubsub, shutdown
from notifier.handlers import notifications as notifications_handler
from notifier.handlers import operational_webhooks as operational_handler

if flask.has_app_context():  # imported by functions-framework, inside the app it builds
    http_guard.install(flask.current_app)
    shutdown.install()  # SIGTERM: waiting deliveries release their claims and answer 503


@functions_framework.cloud_event
def on_event(cloud_event: CloudEvent) -> None:
    """Pub/Sub "message published": returns to acknowledge, raises to have it redelivered."""
    with logs.traced(flask.request.headers, cloud_event.get("traceparent")):
        pubsub.handle(cloud_event.data, bootstrap.dependencies())


@functions_framework.http
def notifications(request: flask.Request) -> flask.Response:
    """``POST`` one event: the original service's contract (docs/http-api.md)."""
    return notifications_handler.handle(request, bootstrap.dependencies)


@functions_framework.http
def app_portal(request: flask.Request) -> flask.Response:
    """A Svix App Portal link for a project's application, for the customer dashboard."""
    return portal_handler.handle(request, bootstrap.dependencies)


@functions_framework.http
def canary(request: flask.Request) -> flask.Response:
    """Svix delivers heartbeats here (public): only a valid Svix signature gets one recorded."""
    with logs.traced(request.headers):
        return canary_handler.handle(request, bootstrap.canary_dependencies)


@functions_framework.http
def operational_webhooks(request: flask.Request) -> flask.Response:
    """Svix's operational webhooks (public): only a valid Svix signature changes an endpoint's
    recorded health."""
    with logs.traced(request.headers):
        return operational_handler.handle(request, bootstrap.operational_dependencies)
