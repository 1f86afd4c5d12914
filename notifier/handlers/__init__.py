"""The handlers: a transport's request in, the use case run, the transport's answer out.

Pub/Sub deliveries (``pubsub``), the HTTP functions (``notifications``, ``app_portal``, ``canary``)
and what they share: the guard and bounded body reading, the answers, the outcome log line. They
get their dependencies handed in (``dependencies``), built by :mod:`notifier.bootstrap`.
"""
