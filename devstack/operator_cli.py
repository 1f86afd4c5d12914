"""The ``notifier`` operator tools as ``make run`` runs them: a child process, as an operator or
deploy.sh runs them, with this stack's environment (the emulators, the twin and its token)."""

from __future__ import annotations

import os
import subprocess
import sys

from devstack.function_server import ROOT


def notifier(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m notifier ARGS``: its exit status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def run_setup(command: str, flags: list[str], env: dict[str, str]) -> None:
    """``notifier COMMAND setup FLAGS``, exactly as deploy.sh runs it; prints its report."""
    done = notifier([command, "setup", *flags], env)
    if done.returncode != 0:
        raise RuntimeError(f"{command} setup failed: {done.stderr.strip()}")
    print(f"{command} setup:\n" + "".join(f"  {line}\n" for line in done.stdout.splitlines()))
