"""The plan ``./deploy.sh --dry-run`` prints, parsed: every command as its words (``+ ``
prefix, shell-quoted, one per line), and what the tests ask of it."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.unit.deploy.running import run_deploy

PROJECT = "demo-proj"
SA = f"notifier-sa@{PROJECT}.iam.gserviceaccount.com"
API_SA = f"notifier-api-sa@{PROJECT}.iam.gserviceaccount.com"
PORTAL_SA = f"notifier-portal-sa@{PROJECT}.iam.gserviceaccount.com"
CANARY_SA = f"notifier-canary-sa@{PROJECT}.iam.gserviceaccount.com"
OPERATIONAL_SA = f"notifier-ops-sa@{PROJECT}.iam.gserviceaccount.com"
HEARTBEAT_SA = f"notifier-hb-sa@{PROJECT}.iam.gserviceaccount.com"
DATABASE_CONDITION = f'resource.name=="projects/{PROJECT}/databases/(default)"'
DROPPED = f"serviceAccount:DROPPED_INVOKER@{PROJECT}.iam.gserviceaccount.com"
PUBSUB_AGENT = "service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
TRIGGER_SUB = f"projects/{PROJECT}/subscriptions/TRIGGER_SUBSCRIPTION"
OUTCOMES = ("sent", "duplicate", "rejected", "failed", "retried")


@dataclass
class Plan:
    """The parsed output of ``deploy.sh --dry-run``."""

    stdout: str
    stderr: str
    commands: list[list[str]]

    def find(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.commands if c[: len(prefix)] == list(prefix)]

    def one(self, *prefix: str) -> list[str]:
        found = self.find(*prefix)
        assert len(found) == 1, f"expected one {' '.join(prefix)!r}, got {found}"
        return found[0]

    def index(self, command: Sequence[str]) -> int:
        return self.commands.index(list(command))


def parse_plan(stdout: str) -> list[list[str]]:
    commands = []
    for line in stdout.splitlines():
        if line.startswith("# wrote "):
            continue
        if line.startswith("+ "):
            commands.append(shlex.split(line[2:], comments=True))
        else:
            assert line == "" or line.startswith("#"), f"unexpected dry-run line: {line!r}"
    return commands


def dry_run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Plan:
    result = run_deploy(tmp, "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return Plan(result.stdout, result.stderr, parse_plan(result.stdout))


def flag(command: Sequence[str], name: str) -> str:
    """Value of --name=value in a command (exactly once)."""
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} appears {len(values)} times in {command}"
    return values[0]


def env_vars(command: Sequence[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in flag(command, "set-env-vars").split(","))


def operator_commands(plan: Plan) -> list[list[str]]:
    return [c for c in plan.commands if c[0] != "gcloud"]


def grants(plan: Plan, kind: str, resource: str | None = None) -> set[tuple[str, str]]:
    """(member, role) pairs granted by add-iam-policy-binding on a kind of resource."""
    found = set()
    for command in plan.commands:
        on_kind = command[: 1 + len(kind.split())] == ["gcloud", *kind.split()]
        if not (on_kind and "add-iam-policy-binding" in command[:5]):
            continue
        target = command[command.index("add-iam-policy-binding") + 1]
        if resource is None or target == resource:
            member = flag(command, "member").removeprefix("serviceAccount:")
            found.add((member, flag(command, "role")))
    return found


def policies(plan: Plan, verb: str = "create") -> dict[str, dict]:
    """The alert policies of the plan, by display name."""
    found = {}
    for command in plan.find("gcloud", "alpha", "monitoring", "policies", verb):
        policy = json.loads(flag(command, "policy"))
        found[policy["displayName"]] = policy
    return found


def exemptions(plan: Plan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for command in plan.find("gcloud", "firestore", "indexes", "fields", "update"):
        assert "--disable-indexes" in command
        assert flag(command, "database") == "(default)"
        found.setdefault(flag(command, "collection-group"), set()).add(command[5])
    return found


def dashboard(plan: Plan) -> dict:
    [command] = plan.find("gcloud", "monitoring", "dashboards", "create") or plan.find(
        "gcloud", "monitoring", "dashboards", "update"
    )
    return json.loads(flag(command, "config"))
