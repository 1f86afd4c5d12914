"""The README's checkable claims: its layout is the repository's, its configuration tables name
exactly the variables the code reads (with config.py's defaults), and its commands exist."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from notifier.cli.commands import REGISTERED
from notifier.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ENV_NAME = re.compile(r"(?:NOTIFIER|SVIX|GOOGLE|GCLOUD|FIRESTORE|PUBSUB|K)_[A-Z0-9_]+")
# Files the layout leaves out on purpose.
UNLISTED = {"README.md", ".gitignore"}


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


# -- Layout ---------------------------------------------------------------------------------------


def layout_entries() -> list[str]:
    """Every path the Layout block names: ``name`` at its indentation (2 spaces a level), nested
    under the directory entry above it; continuation lines and ``#`` headings name nothing."""
    block = section("Layout").split("```\n", 2)[1]
    entries: list[str] = []
    parents: list[str] = []
    for line in block.splitlines():
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped or stripped.startswith("#") or indent >= 24 or indent % 2:
            continue
        depth = indent // 2
        names = re.split(r"\s{2,}", stripped, maxsplit=1)[0]
        parents = parents[:depth]
        for name in names.split(", "):
            entries.append("".join(parents) + name)
        if names.endswith("/") and "," not in names:
            parents.append(names)
    return entries


def test_the_layout_parser_sees_the_nesting():
    entries = layout_entries()
    assert "notifier/domain/claims.py" in entries
    assert "devstack/svix_twin/" in entries
    assert "tests/keyspace.py" in entries
    assert "notifier/domain/decoding.py" in entries and "notifier/domain/schema.py" in entries


def test_every_path_in_the_layout_exists():
    missing = [entry for entry in layout_entries() if not (ROOT / entry).exists()]
    assert missing == []


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_every_file_in_the_repository_is_in_the_layout():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    entries = layout_entries()
    files = {e for e in entries if not e.endswith("/")}
    folders = tuple(e for e in entries if e.endswith("/"))
    unlisted = [
        name
        for name in tracked
        if name not in files and not name.startswith(folders) and name not in UNLISTED
    ]
    assert unlisted == []


# -- Configuration --------------------------------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def configuration_tables() -> tuple[dict[str, str], set[str]]:
    """The first table (config.py's variables -> default) and every variable named anywhere in
    the section's tables' first columns."""
    tables = section("Configuration").split("\n\n")
    tables = [t for t in tables if t.lstrip().startswith("| variable")]
    assert len(tables) == 2, "the Configuration section has two tables"
    defaults: dict[str, str] = {}
    for cells in table_rows(tables[0])[1:]:
        for name in ENV_NAME.findall(cells[0]):
            defaults[name] = cells[1]
    named = set(defaults)
    for cells in table_rows(tables[1])[1:]:
        named.update(ENV_NAME.findall(cells[0]))
    return defaults, named


def variables_the_code_reads() -> set[str]:
    """String constants in notifier/ and main.py that are exactly an environment variable's name
    (a message quoting one is not a read)."""
    found = set()
    for path in [*(ROOT / "notifier").rglob("*.py"), ROOT / "main.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and ENV_NAME.fullmatch(value):
                found.add(value)
    return found


def config_fields() -> dict[str, str]:
    """NOTIFIER_* variable -> the Settings field config.py reads it into."""
    source = (ROOT / "notifier" / "config.py").read_text()
    pairs = re.findall(r"(\w+)=(?:int\(\s*)?(?:number|schedule)\(\s*\"(NOTIFIER_\w+)\"", source)
    fields = {name: field for field, name in pairs}
    fields["NOTIFIER_LOG_LEVEL"] = "log_level"
    fields["NOTIFIER_HEARTBEAT_PROJECT"] = "heartbeat_project"
    fields["FIRESTORE_DATABASE"] = "firestore_database"
    return fields


def test_the_configuration_tables_name_exactly_the_variables_the_code_reads():
    _, named = configuration_tables()
    assert named == variables_the_code_reads()


def test_the_configuration_table_has_config_py_defaults():
    defaults, _ = configuration_tables()
    fields = config_fields()
    assert set(fields) >= {n for n in defaults if n.startswith("NOTIFIER_")}
    for name, field in fields.items():
        value = getattr(Settings, field)
        if isinstance(value, tuple):
            expected = ",".join(f"{v:g}" for v in value)
        elif isinstance(value, float):
            expected = f"{value:g}"
        else:
            expected = str(value)
        assert defaults[name] == f"`{expected}`", name


def test_the_longest_delivery_the_table_names_is_the_defaults():
    settings = Settings(gcp_project="p", svix_api_key="k")
    assert f"({settings.longest_delivery_seconds:g} s with the defaults" in section("Configuration")


# -- Operator tools ---------------------------------------------------------------------------


def test_every_registered_command_is_in_the_operator_tools_section():
    text = section("Operator tools")
    for name in REGISTERED:
        assert f"notifier {name}" in text, name


# -- Links ----------------------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_inside_the_readme_reaches_a_heading():
    anchors = {github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", README, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= anchors, links - anchors


def test_every_file_the_readme_links_exists():
    targets = re.findall(r"\]\((?!https?:|#)([^)#]+)\)", README)
    assert targets
    assert [t for t in targets if not (ROOT / t).exists()] == []


# -- Limits of the HTTP functions -----------------------------------------------------------------


def test_the_limits_table_has_the_code_s_limits():

    from notifier.handlers import app_portal, canary, http_body, http_guard

    limits = section("HTTP API").split("### Limits of the HTTP functions", 1)[1].split("\n### ")[0]
    assert f"| {http_guard.MAX_URL_BYTES} bytes |" in limits
    assert f"{http_guard.BODY_CAP:,} bytes (push envelope)" in limits
    assert app_portal.MAX_BODY_BYTES == canary.MAX_BODY_BYTES == 16 * 1024
    assert "`app_portal` and `canary` 16 KiB" in limits
    assert f"| {http_body.READ_SECONDS:g} s from the first read |" in limits
