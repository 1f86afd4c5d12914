"""deploy.sh and its parts (deploy/), checked offline through the plan ``--dry-run`` prints."""
