"""deploy.sh and its parts read as code: strict bash, shellcheck clean, executable."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.unit.deploy.running import DEPLOY, ROOT


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    """deploy.sh with the parts it sources followed (-x), and every part on its own."""
    parts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").glob("*.sh"))
    assert parts, "deploy/ has the script's parts"
    result = subprocess.run(
        ["shellcheck", "-x", "deploy.sh", *parts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_strict_and_executable():
    text = DEPLOY.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(DEPLOY, os.X_OK)
