"""The package declares what it needs: pyproject.toml's dependencies are requirements.txt's pins
(what Cloud Functions installs) as ranges that hold them, plus the CLI's, pinned for the tests in
requirements-dev.txt; and every third-party module notifier/ and main.py import comes from one of
them. (That `pip install .` then gives a working `notifier` is .ci/run's step: it needs PyPI.)"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CLI = {"rich", "google-cloud-pubsub"}  # the operator CLI's: not deployed
# Imported by notifier/ but installed by a declared dependency whose own interface they are:
# functions-framework is a Flask app (werkzeug its WSGI, cloudevents its events) served by gunicorn
# (whose worker's SIGTERM handler handlers/shutdown.py chains), the svix SDK
# is built on httpx and pydantic, google-cloud-firestore on google-api-core and google-auth.
PROVIDED_BY = {
    "flask": "functions-framework",
    "werkzeug": "functions-framework",
    "cloudevents": "functions-framework",
    "gunicorn": "functions-framework",
    "httpx": "svix",
    "pydantic": "svix",
    "google-api-core": "google-cloud-firestore",
    "google-auth": "google-cloud-firestore",
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def pinned(path: Path) -> dict[str, str]:
    """``name==version`` lines (comments and ``-r`` includes aside), by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line} is not pinned"
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_pyproject_declares_requirements_txt_and_the_cli_s_packages():
    assert set(declared()) == set(pinned(ROOT / "requirements.txt")) | CLI


@pytest.mark.parametrize(
    ("requirements", "names"),
    [("requirements.txt", None), ("requirements-dev.txt", CLI)],
)
def test_every_pin_is_within_pyproject_s_range(requirements, names):
    ranges = declared()
    pins = pinned(ROOT / requirements)
    for name in names or pins:
        assert ranges[name].specifier.contains(pins[name]), (name, pins[name])


def test_the_ranges_are_bounded_above():
    """A major release of a dependency is a change to make on purpose, not at install time."""
    for name, requirement in declared().items():
        assert any(s.operator == "<" for s in requirement.specifier), name


# -- every third-party import is declared ---------------------------------------------------------


def third_party_imports() -> set[str]:
    """Modules notifier/ and main.py import (``importlib.import_module("...")`` included), outside
    the standard library and the package."""
    found: set[str] = set()
    for path in [ROOT / "main.py", *(ROOT / "notifier").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(imported_from(node.module, alias.name) for alias in node.names)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value))
    top = {name.split(".")[0] for name in found}
    assert "notifier" in top  # the walk reads imports
    return {
        name
        for name in found
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != "notifier"
    }


def imported_from(module: str, name: str) -> str:
    """``from google.cloud import firestore`` imports google.cloud.firestore (google.cloud is a
    namespace of many distributions); ``from svix.api import Svix`` imports svix.api."""
    if module.split(".")[0] in sys.stdlib_module_names | {"notifier"}:
        return module
    try:
        submodule = importlib.util.find_spec(f"{module}.{name}")
    except ModuleNotFoundError:
        submodule = None
    return f"{module}.{name}" if submodule is not None else module


@cache
def files_of_distributions() -> dict[str, str]:
    """Every installed file (as a path inside site-packages) -> its distribution."""
    owners: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        for file in distribution.files or ():
            owners[str(file).replace("\\", "/")] = canonicalize_name(distribution.metadata["Name"])
    return owners


def distribution_of(module: str) -> str | None:
    """The installed distribution that holds ``module`` (or the nearest package above it)."""
    owners = files_of_distributions()
    parts = module.split(".")
    while parts:
        base = "/".join(parts)
        for candidate in (f"{base}/__init__.py", f"{base}.py"):
            if candidate in owners:
                return owners[candidate]
        spec = importlib.util.find_spec(".".join(parts))
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            name = Path(spec.origin).name
            for path, owner in owners.items():
                if path.startswith(base + "/") and path.endswith(name):
                    return owner
        parts.pop()
    return None


def requires(parent: str) -> set[str]:
    """The distributions ``parent``'s installed metadata requires (environment markers aside)."""
    listed = importlib.metadata.requires(parent) or []
    return {canonicalize_name(Requirement(line).name) for line in listed if "extra ==" not in line}


def undeclared(modules: set[str]) -> dict[str, str | None]:
    """Each module no declared dependency installs -> the distribution it comes from."""
    ranges = declared()
    missing = {}
    for module in sorted(modules):
        owner = distribution_of(module)
        if owner in ranges:
            continue
        parent = PROVIDED_BY.get(owner or "")
        if parent in ranges and owner in requires(parent):
            continue
        missing[module] = owner
    return missing


def test_every_third_party_module_the_package_imports_is_declared():
    assert undeclared(third_party_imports()) == {}


def test_an_import_of_an_undeclared_distribution_is_found():
    """The tests' own tools are installed here, but the package may not import them."""
    assert undeclared({"hypothesis.strategies", "rich.table"}) == {
        "hypothesis.strategies": "hypothesis"
    }


def test_the_import_check_can_tell_a_module_s_distribution():
    """What the check above rests on: real modules found in their distributions."""
    assert distribution_of("google.cloud.firestore_v1.base_query") == "google-cloud-firestore"
    assert distribution_of("google.cloud.pubsub_v1") == "google-cloud-pubsub"
    assert distribution_of("rich.console") == "rich"
    assert distribution_of("jsonschema_rs") == "jsonschema-rs"
    assert distribution_of("flask") == "flask"
    assert "google.cloud.pubsub_v1" in third_party_imports()  # imported by name, when used
    assert "flask" in requires("functions-framework")
