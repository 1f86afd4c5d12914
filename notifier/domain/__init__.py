"""The domain: the words the notifier speaks, and the ports its adapters plug into.

Nothing here imports a cloud SDK: ``events`` (what arrives), ``claims`` (who may send, and the
record statuses), ``outcomes`` (what one delivery ended in), ``ports`` (what the service and the
operations need from a store and a sender). The error tree is :mod:`notifier.errors`, which imports
nothing either. Adapters (:mod:`notifier.store`, :mod:`notifier.svix_sender`) import the domain,
never the other way round.
"""
