"""Svix: one client (the SDK on our HTTP client, every answer classified) under the adapters of
messages, event types and the heartbeat's setup."""
