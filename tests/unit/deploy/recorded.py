"""The dry-run plans recorded before deploy.sh was split into deploy/, and how a plan is compared
with them: the same lines in the same order, every JSON document in them compared parsed.

``plans/cases.json`` names each case's options (``args``, extra ``env``); ``plans/NAME.stdout``
and ``plans/NAME.stderr`` are what ``./deploy.sh --dry-run ARGS`` printed, with this checkout's
path written ``@ROOT@`` and the operator commands' Python ``@PYTHON@``. Re-record only for a plan
change made on purpose, and review the diff: ``python -m tests.unit.deploy.recorded``.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.deploy.running import ROOT, run_deploy, scrubbed_env

PLANS = Path(__file__).resolve().parent / "plans"
CASES: dict[str, dict[str, Any]] = json.loads((PLANS / "cases.json").read_text())


@dataclass
class Printed:
    """What one case printed, this checkout's paths written as placeholders."""

    stdout: str
    stderr: str


def generalised(text: str) -> str:
    return text.replace(sys.executable, "@PYTHON@").replace(str(ROOT), "@ROOT@")


def localised(text: str) -> str:
    return text.replace("@PYTHON@", sys.executable).replace("@ROOT@", str(ROOT))


def run_case(name: str, tmp: Path) -> Printed:
    """``./deploy.sh --dry-run`` with the case's options, the operator Python being this one."""
    case = CASES[name]
    args = [localised(arg) for arg in case["args"]]
    if case.get("dry_run_flag", True):
        args.insert(0, "--dry-run")
    extra = {key: localised(value) for key, value in case.get("env", {}).items()}
    if case.get("python_env", True):
        extra.setdefault("NOTIFIER_PYTHON", sys.executable)
    result = run_deploy(tmp, *args, env=scrubbed_env(tmp, **extra))
    assert result.returncode == 0, (name, result.stderr)
    return Printed(generalised(result.stdout), generalised(result.stderr))


def recorded(name: str) -> Printed:
    return Printed((PLANS / f"{name}.stdout").read_text(), (PLANS / f"{name}.stderr").read_text())


def comparable(stdout: str) -> list[Any]:
    """The plan's lines: a command as its words, a JSON word parsed; ``# wrote FILE: JSON`` as
    the file and its JSON parsed; any other line as it is."""
    lines: list[Any] = []
    for line in stdout.splitlines():
        if line.startswith("+ "):
            lines.append(["+", *(_word(word) for word in shlex.split(line[2:]))])
        elif line.startswith("# wrote "):
            path, _, document = line.removeprefix("# wrote ").partition(": ")
            lines.append(["# wrote", path, json.loads(document)])
        else:
            lines.append(line)
    return lines


def written(stdout: str) -> dict[str, Any]:
    """Each file the plan says it wrote (``# wrote FILE: JSON``), by path: the JSON it shows."""
    files = {}
    for line in stdout.splitlines():
        if line.startswith("# wrote "):
            path, _, document = line.removeprefix("# wrote ").partition(": ")
            files[path] = json.loads(document)
    return files


def _word(word: str) -> Any:
    """``--flag={...}`` or a bare JSON word as (flag, parsed document); any other word as is."""
    flag, value = "", word
    if word.startswith("--") and "=" in word:
        flag, value = word.split("=", 1)
    if value.startswith(("{", "[")):
        return (flag, json.loads(value))
    return word


def record() -> None:
    """Writes every case's plan from the deploy.sh of this checkout."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            printed = run_case(name, Path(tmp))
            (PLANS / f"{name}.stdout").write_text(printed.stdout)
            (PLANS / f"{name}.stderr").write_text(printed.stderr)
            print(f"recorded {name}")


if __name__ == "__main__":
    record()
