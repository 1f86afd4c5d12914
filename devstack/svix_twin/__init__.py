"""The Svix server's twin: each module copies one part of svix-server (devstack/SVIX_TWIN.md)."""
