"""What gcloud itself makes of it, offline: .gcloudignore uploads exactly what the function
needs, and every planned command passes gcloud's own argument parsing."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.plan import (
    PROJECT,
    dry_run,
)
from tests.unit.deploy.running import ROOT, scrubbed_env

GCLOUDIGNORE = ROOT / ".gcloudignore"


# schemas/events/: the catalog the drift check loads at run time (without it every event is
# "unknown_type").
NEEDED = {
    "main.py",
    "notifier/__init__.py",
    "schemas/event.schema.json",
    "schemas/events/payment/payment.succeeded.json",
    "requirements.txt",
}


EXCLUDED = [
    "tests/x.py",
    "tests/unit/test_x.py",
    "devstack/x.py",
    ".venv/x",
    ".venv/lib/python3.11/site-packages/x.py",
    "samples/x.json",
    "samples/events/y.json",
    "benchmarks/x.py",
    "README.md",
    "Makefile",
    "deploy.sh",
    "requirements-dev.txt",
    "pyproject.toml",
    ".ci/run",
    ".git/HEAD",
    ".gitignore",
    "docs/index.md",
    ".pytest_cache/x",
    "notifier/__pycache__/x.cpython-311.pyc",
    "schemas/README.md",
]


def list_files_for_upload(directory: Path, tmp: Path) -> set[str]:
    result = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", str(directory)],
        env=scrubbed_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {
        line.strip().replace(os.sep, "/") for line in result.stdout.splitlines() if line.strip()
    }


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_gcloudignore_uploads_exactly_what_the_function_needs(tmp_path):
    source = tmp_path / "src"
    for name in [*NEEDED, *EXCLUDED]:
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# placeholder\n")
    shutil.copy(GCLOUDIGNORE, source / ".gcloudignore")
    assert list_files_for_upload(source, tmp_path) == NEEDED


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_real_tree_uploads_only_runtime_files(tmp_path):
    uploaded = list_files_for_upload(ROOT, tmp_path)
    assert "main.py" in uploaded
    for name in uploaded:
        top = name.split("/", 1)[0]
        assert name in {"main.py", "requirements.txt"} or top in {"notifier", "schemas"}, name
        assert "__pycache__" not in name


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NOTIFIER_HEAVY") != "1", reason="set NOTIFIER_HEAVY=1")
@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_gcloud_accepts_every_planned_command(tmp_path):
    """Each command reaches gcloud's authentication step, i.e. its arguments parse.

    Without credentials (and with the metadata server and any proxy disabled) nothing can be
    changed anywhere; an argument error would be reported before authentication.
    """
    commands: dict[tuple[str, ...], None] = {}
    for args in (
        ["--project", PROJECT, "--alert-email=ops@example.com", "--invoker=group:ops@example.com"],
        [
            "--project",
            PROJECT,
            "--assume-existing",
            "--svix-server-url=https://api.eu.svix.com",
            "--invoker=user:kept@example.com",
            "--target-rate=10000",
        ],
    ):
        for command in dry_run(tmp_path, *args).commands:
            if command[0] == "gcloud":  # the operator commands are the project's own CLI
                commands[tuple(command)] = None
    # The plan's placeholders for the signing secrets' files, relative to the working directory.
    (tmp_path / "CANARY_SECRET_FILE").write_text("whsec_placeholder")
    (tmp_path / "OPERATIONAL_SECRET_FILE").write_text("whsec_placeholder")
    env = scrubbed_env(tmp_path, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")

    def attempt(command: tuple[str, ...]) -> tuple[tuple[str, ...], int, str]:
        result = subprocess.run(
            list(command), env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        return command, result.returncode, result.stderr

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, commands))
    for command, returncode, stderr in results:
        assert returncode != 0, f"ran without credentials?! {command}"
        assert "active account" in stderr or "gcloud auth login" in stderr, (command, stderr)
