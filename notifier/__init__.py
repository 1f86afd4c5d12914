"""notifier: the platform's Pub/Sub events in, one Svix message per event out, exactly once."""
