"""The house's one-way imports, read from the folders: a module's layer is where it lives, and
every import runs entry points -> handlers -> use cases -> domain <- adapters, bootstrap above all.
The domain and the use cases load no cloud SDK."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "notifier"
CLOUD = ("google.", "svix", "httpx", "functions_framework", "flask", "werkzeug")

# What each layer may import of the package (its own layer included). Config and logs are
# single modules; ``notifier`` (its __init__) imports nothing.
ALLOWED = {
    "entry": {"entry", "bootstrap", "handlers", "usecases", "domain", "config", "logs"},
    "bootstrap": {"bootstrap", "handlers", "usecases", "domain", "adapters", "config", "logs"},
    "handlers": {"handlers", "usecases", "domain", "config", "logs"},
    "usecases": {"usecases", "domain", "logs"},
    "domain": {"domain"},
    "adapters": {"adapters", "domain", "config", "logs"},
    "config": {"config", "domain"},
    "logs": {"logs"},
    "package": set(),
}
FOLDERS = {
    "cli": "entry",
    "handlers": "handlers",
    "usecases": "usecases",
    "domain": "domain",
    "adapters": "adapters",
}
MODULES = {"__main__": "entry", "bootstrap": "bootstrap", "config": "config", "logs": "logs"}


# -- the rule -------------------------------------------------------------------------------------


def layer_of(module: str) -> str | None:
    """The layer of ``main`` or a ``notifier...`` module, from its folder; None: no known place."""
    if module == "main":
        return "entry"
    parts = module.split(".")
    if parts[0] != "notifier":
        return None
    if len(parts) == 1:
        return "package"
    if parts[1] in FOLDERS:  # a folder's modules, and the folder itself (its __init__)
        return FOLDERS[parts[1]]
    return MODULES.get(parts[1]) if len(parts) == 2 else None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every module in no known place, and every import of the package against the rule."""
    found = []
    for module, imported in sorted(graph.items()):
        layer = layer_of(module)
        if layer is None:
            found.append(f"{module}: not in a layer's folder")
            continue
        for name in sorted(imported):
            target = layer_of(name)
            if target is None:
                found.append(f"{module} imports {name}, which is in no layer")
            elif target not in ALLOWED[layer]:
                found.append(f"{module} ({layer}) imports {name} ({target})")
    return found


# -- the repository's graph ---------------------------------------------------------------------


def module_name(path: Path) -> str:
    """``notifier/domain/events.py`` is notifier.domain.events, ``notifier/domain/__init__.py``
    notifier.domain."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return [ROOT / "main.py", *sorted(PACKAGE.rglob("*.py"))]


MODULE_NAMES = {module_name(path) for path in source_files()}


def imports_of(path: Path) -> set[str]:
    """The package's modules a file imports (``from notifier import logs`` is notifier.logs,
    ``from notifier.domain.events import Event`` notifier.domain.events), typing-only ones too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULE_NAMES else node.module)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: a relative import; the house writes them absolute")
    return {name for name in names if name == "notifier" or name.startswith("notifier.")}


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in source_files()}


def test_every_module_of_the_package_is_in_a_layer_s_folder():
    unplaced = [name for name in sorted(MODULE_NAMES) if layer_of(name) is None]
    assert unplaced == []
    assert len(MODULE_NAMES) > 50  # the walk found the package


def test_every_import_runs_the_way_the_layers_allow():
    assert violations(graph()) == []


def test_the_graph_sees_the_imports_the_rule_judges():
    """The real graph holds the edges the rule is about, so an empty list above means something."""
    edges = graph()
    assert "notifier.bootstrap" in edges["main"]
    assert "notifier.adapters.svix.messages" in edges["notifier.bootstrap"]
    assert "notifier.domain.ports" in edges["notifier.usecases.exactly_once"]
    assert "notifier.logs" in edges["notifier.handlers.pubsub"]  # `from notifier import logs`


def test_at_most_eight_modules_sit_at_the_top_of_the_package():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    assert top == ["__init__.py", "__main__.py", "bootstrap.py", "config.py", "logs.py"]


# -- the rule, shown to fail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("notifier.domain.events", "notifier.logs"),  # the domain logs nothing
        ("notifier.domain.catalog", "notifier.config"),
        ("notifier.domain.ports", "notifier.adapters.svix.client"),
        ("notifier.usecases.exactly_once", "notifier.config"),
        ("notifier.usecases.replay", "notifier.adapters.firestore.store"),
        ("notifier.usecases.status", "notifier.handlers.dependencies"),
        ("notifier.handlers.pubsub", "notifier.adapters.firestore.store"),
        ("notifier.handlers.canary", "notifier.bootstrap"),  # handed its dependencies, never
        ("notifier.adapters.svix.heartbeat_admin", "notifier.usecases.heartbeat_setup"),
        ("notifier.adapters.pubsub.admin", "notifier.bootstrap"),
        ("notifier.cli.reach", "notifier.adapters.firestore.store"),  # only through bootstrap
        ("main", "notifier.adapters.svix.messages"),
        ("notifier.bootstrap", "notifier.cli.reach"),  # bootstrap is below the entry points
        ("notifier.config", "notifier.logs"),
        ("notifier.logs", "notifier.config"),
        ("notifier.domain.events", "notifier.helpers"),  # a module in no layer's place
    ],
)
def test_an_import_that_runs_the_wrong_way_is_refused(module, imported):
    assert violations({module: {imported}}) != []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("main", "notifier.bootstrap"),
        ("notifier.cli.commands.replay", "notifier.usecases.replay"),
        ("notifier.bootstrap", "notifier.adapters.svix.client"),
        ("notifier.handlers.notifications", "notifier.usecases.exactly_once"),
        ("notifier.handlers.canary", "notifier.config"),
        ("notifier.usecases.drift_watch", "notifier.logs"),
        ("notifier.usecases.replay", "notifier.usecases.exactly_once"),
        ("notifier.adapters.svix.messages", "notifier.domain.ports"),
        ("notifier.adapters.pubsub.admin", "notifier.config"),
        ("notifier.config", "notifier.domain.heartbeat"),
    ],
)
def test_an_import_the_way_the_layers_run_is_allowed(module, imported):
    assert violations({module: {imported}}) == []


@pytest.mark.parametrize(
    "module", ["notifier.helpers", "notifier.wiring", "notifier.operations.replay", "tools.x"]
)
def test_a_module_outside_the_layers_folders_is_refused(module):
    assert violations({module: set()}) == [f"{module}: not in a layer's folder"]


# -- no cloud SDK below the handlers --------------------------------------------------------------


def loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def modules_in(*folders: str) -> list[str]:
    return sorted(
        module_name(path) for folder in folders for path in (PACKAGE / folder).rglob("*.py")
    )


@pytest.mark.parametrize(
    "module",
    [
        *modules_in("domain", "usecases"),
        # the handlers' plumbing, installed before any request, loads none either
        "notifier.handlers.dependencies",
        "notifier.handlers.http_body",
        "notifier.handlers.http_guard",
    ],
)
def test_the_domain_and_the_use_cases_load_no_cloud_sdk(module):
    # A namespace-package .pth file puts an empty ``google.cloud`` in every interpreter: only what
    # the import adds counts.
    modules = set(loaded_after(f"import {module}")) - set(loaded_after("pass"))
    assert module in modules
    assert sorted(m for m in modules if m == "google.cloud" or m.startswith(CLOUD)) == []


def test_the_walk_finds_the_domain_and_the_use_cases():
    found = modules_in("domain", "usecases")
    assert {"notifier.domain.ports", "notifier.usecases.exactly_once"} <= set(found)


@pytest.mark.parametrize(
    ("adapter", "sdk"),
    [
        ("notifier.adapters.firestore.store", "google.cloud.firestore"),
        ("notifier.adapters.firestore.heartbeats", "google.cloud.firestore"),
        ("notifier.adapters.firestore.calls", "google.api_core"),
        ("notifier.adapters.svix.client", "svix"),
        ("notifier.adapters.svix.messages", "svix"),
        ("notifier.adapters.svix.event_types", "svix"),
        ("notifier.adapters.svix.heartbeat_admin", "svix"),
        ("notifier.adapters.pubsub.admin", "google.api_core"),
    ],
)
def test_the_adapters_do_load_theirs(adapter, sdk):
    """The check above can fail: importing an adapter shows its SDK in ``sys.modules``."""
    assert sdk in loaded_after(f"import {adapter}")


# -- docstrings -----------------------------------------------------------------------------------


def public_without_docstring(path: Path) -> list[str]:
    """The module's public functions and classes, and their public methods, without a docstring
    (a function's local helpers are not names of the module)."""
    missing = []
    tree = ast.parse(path.read_text())
    nodes = [*tree.body, *(n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body)]
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            public = not node.name.startswith("_")
            if public and ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return missing


def test_every_public_name_of_the_domain_the_ports_and_the_adapters_says_what_it_is():
    paths = [
        *sorted((PACKAGE / "domain").rglob("*.py")),  # the ports included
        *sorted((PACKAGE / "usecases").rglob("*.py")),
        *sorted((PACKAGE / "adapters").rglob("*.py")),
    ]
    assert (PACKAGE / "domain" / "ports.py") in paths
    assert [m for path in paths for m in public_without_docstring(path)] == []
