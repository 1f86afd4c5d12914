"""Local development stack: real GCP emulators and a Pub/Sub push relay for tests and `make run`."""
