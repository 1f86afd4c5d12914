"""Operator work on a running deployment, one use case per module, over the ports.

``status`` (where the records stand), ``replay`` (send failed and stuck notifications again) and
``redrive`` (bring dead letters back). Nothing here has its own way to Svix or its own idea of the
record layout: the store answers the queries (:class:`notifier.domain.ports.NotificationQueries`),
a replay hands the stored event to :meth:`notifier.service.Notifier.deliver`, and a direct redrive
hands the dead letter to the function's own entry, so both keep its exactly-once guarantees.
"""
