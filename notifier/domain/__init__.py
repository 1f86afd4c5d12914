"""The domain: the words the notifier speaks, and every port its adapters plug into.

Pure: nothing here imports a cloud SDK, the logs or the configuration, and nothing outside the
domain. Events and their decoding, claims, outcomes, records, the error tree, the heartbeat's and
the catalog's models, and :mod:`~notifier.domain.ports`; the use cases and the adapters import it,
never the other way round.
"""
