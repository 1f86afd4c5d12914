"""Firestore: the notification records, applications and rejections (``store``), heartbeats, and
what both share (document keys, bounded calls whose failures mean StoreUnavailable)."""
