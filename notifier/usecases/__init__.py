"""The use cases: what the system does, over the domain's ports, loading no cloud SDK.

The function's: delivery exactly once (``exactly_once``, with each project's Svix application,
``applications``) and the catalog check after it (``drift_watch``). The operator's, on a running
deployment: ``status`` (where the records stand), ``replay`` (send failed and stuck notifications
again), ``redrive`` (bring dead letters back), ``catalog_sync`` and ``catalog_openapi`` (the event
catalog to Svix and to the docs), ``heartbeat_setup`` (the heartbeat's Svix side). Nothing here has
its own way to Svix or its own idea of the record layout: a replay hands the stored event to
:meth:`notifier.usecases.exactly_once.Notifier.deliver`, and a direct redrive hands the dead
letter to the function's own entry, so both keep its exactly-once guarantees.
"""
