"""Running deploy.sh as an operator would, with nothing of this machine's cloud setup: no
credentials, no inherited NOTIFIER_*/GOOGLE_* settings, a throwaway gcloud configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests import offline

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy.sh"


def scrubbed_env(tmp: Path, path: str | None = None, **extra: str) -> dict[str, str]:
    """No credentials, no inherited NOTIFIER_*/GOOGLE_* settings, a throwaway gcloud config."""
    (tmp / "home").mkdir(exist_ok=True)
    env = {
        "PATH": path if path is not None else os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "home"),
        "CLOUDSDK_CONFIG": str(tmp / "gcloud-config"),
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "LANG": "C.UTF-8",
        **offline.ENV,
    }
    env.update(extra)
    return env


def run_deploy(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``./deploy.sh ARGS`` from a directory of its own (deploy.sh works from its checkout)."""
    return subprocess.run(
        [str(DEPLOY), *args],
        env=env if env is not None else scrubbed_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp,
    )
