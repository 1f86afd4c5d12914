"""The adapters: the outside world behind the domain's ports, one folder per service (Firestore,
Svix, Pub/Sub). Only :mod:`notifier.bootstrap` builds them; they import the domain, the settings
and the logs, never a use case or a handler."""
