"""The house's one-way imports: the domain and the service load no cloud SDK."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ("google.", "svix", "httpx", "functions_framework", "flask", "werkzeug")


def loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "module",
    [
        "notifier.usecases.exactly_once",
        "notifier.domain.ports",
        "notifier.domain.outcomes",
        "notifier.handlers.dependencies",
        "notifier.domain.decoding",
        "notifier.usecases.status",
        "notifier.usecases.replay",
        "notifier.usecases.redrive",
        "notifier.domain.heartbeat",
        "notifier.usecases.heartbeat_setup",
        "notifier.usecases.drift_watch",
        "notifier.domain.catalog",
        "notifier.usecases.catalog_sync",
        "notifier.usecases.catalog_openapi",
        "notifier.handlers.http_body",
        "notifier.handlers.http_guard",
    ],
)
def test_the_domain_the_service_and_the_use_cases_load_no_cloud_sdk(module):
    # A namespace-package .pth file puts an empty ``google.cloud`` in every interpreter: only what
    # the import adds counts.
    modules = set(loaded_after(f"import {module}")) - set(loaded_after("pass"))
    assert module in modules
    assert sorted(m for m in modules if m == "google.cloud" or m.startswith(CLOUD)) == []


def test_the_adapters_do_load_theirs():
    """The check above can fail: importing an adapter shows up in ``sys.modules``."""
    modules = loaded_after(
        "import notifier.adapters.firestore.store, notifier.adapters.svix.messages"
    )
    assert "google.cloud.firestore" in modules
    assert "svix" in modules


@pytest.mark.parametrize(
    ("adapter", "sdk"),
    [
        ("notifier.adapters.firestore.heartbeats", "google.cloud.firestore"),
        ("notifier.adapters.svix.event_types", "svix"),
        ("notifier.adapters.svix.heartbeat_admin", "svix"),
    ],
)
def test_the_new_adapters_hold_the_sdks_their_use_cases_leave_out(adapter, sdk):
    assert sdk in loaded_after(f"import {adapter}")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (``from notifier import x`` counts as notifier.x)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_below_the_entry_points_fetches_its_dependencies():
    """Only the entry points and bootstrap itself import bootstrap: the rest is handed deps."""
    entry_points = {"bootstrap.py", "cli.py", "__main__.py"}
    importing = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "notifier").rglob("*.py")
        if path.name not in entry_points
        and "cli" not in path.relative_to(ROOT / "notifier").parts[:-1]
        and "notifier.bootstrap" in imports_of(path)
    ]
    assert importing == []
    assert "notifier.bootstrap" in imports_of(ROOT / "main.py")  # the check can see an import


def test_the_domain_imports_only_the_domain_and_the_error_tree():
    for path in (ROOT / "notifier" / "domain").glob("*.py"):
        ours = {name for name in imports_of(path) if name.startswith("notifier")}
        assert all(n.startswith(("notifier.domain", "notifier.errors")) for n in ours), path


def public_without_docstring(path: Path) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            public = not node.name.startswith("_")
            if public and ast.get_docstring(node) is None:
                missing.append(f"{path.name}:{node.lineno} {node.name}")
    return missing


def test_every_public_name_of_the_domain_and_the_ports_says_what_it_is():
    paths = [
        *sorted((ROOT / "notifier" / "domain").glob("*.py")),
        ROOT / "notifier" / "usecases" / "exactly_once.py",
        ROOT / "notifier" / "usecases" / "applications.py",
        ROOT / "notifier" / "usecases" / "heartbeat_setup.py",
        ROOT / "notifier" / "usecases" / "drift_watch.py",
        ROOT / "notifier" / "usecases" / "catalog_sync.py",
        ROOT / "notifier" / "usecases" / "catalog_openapi.py",
        ROOT / "notifier" / "adapters" / "svix" / "event_types.py",
        ROOT / "notifier" / "adapters" / "svix" / "heartbeat_admin.py",
    ]
    assert [m for path in paths for m in public_without_docstring(path)] == []
