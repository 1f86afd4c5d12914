"""Pub/Sub for the operator tools: the dead-letter subscription and the topic to republish to."""
