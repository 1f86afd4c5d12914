"""The docs' checkable claims, where the text lives: README.md is the front door, docs/ holds the
rest. Every link and anchor resolves; the Layout block is the repository's, the configuration
tables name exactly the variables the code reads (with config.py's defaults), and the limits and
commands they name are the code's."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from notifier.cli.commands import REGISTERED
from notifier.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ENV_NAME = re.compile(r"(?:NOTIFIER|SVIX|GOOGLE|GCLOUD|FIRESTORE|PUBSUB|K)_[A-Z0-9_]+")
# Files the layout leaves out on purpose.
UNLISTED = {"README.md", ".gitignore"}
FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def page(relative: str) -> str:
    return (ROOT / relative).read_text()


def prose(text: str) -> str:
    """The text without its fenced blocks (their lines kept, blank), where links and headings
    count."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def section(text: str, title: str) -> str:
    """A ``## title`` section of a page, up to the next ``## `` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# -- Links and anchors ----------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text as rendered (no backticks or emphasis, a link's
    text only), lower case, punctuation but ``-`` and ``_`` dropped, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's id on the page; a repeated heading gets ``-1``, ``-2``... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in HEADING.findall(prose(path.read_text())):
        slug = github_anchor(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def link_targets(text: str) -> list[str]:
    """Every link's target in the prose: inline links and images, and reference definitions
    (link text in backticks counts; a code span's brackets do not)."""
    text = CODE_SPAN.sub(lambda m: "code" if "](" not in m.group(0) else m.group(0), prose(text))
    return [*LINK.findall(text), *REFERENCE.findall(text)]


def local_links(path: Path) -> Iterator[tuple[str, Path, str]]:
    """(target as written, the file it reaches, its anchor) for each link that stays local."""
    for target in link_targets(path.read_text()):
        if SCHEME.match(target):
            continue
        file, _, anchor = target.partition("#")
        yield target, (path.parent / file).resolve() if file else path, anchor


def broken_links(root: Path, files: Iterable[Path]) -> list[str]:
    """Links to a file that does not exist (or lies outside the repository), and anchors that no
    heading of their page has."""
    problems = []
    for path in files:
        for target, reached, anchor in local_links(path):
            where = f"{relative(path, root)}: ({target})"
            if not reached.exists() or not reached.is_relative_to(root.resolve()):
                problems.append(f"{where} reaches no file of the repository")
            elif anchor and (reached.suffix != ".md" or anchor not in anchors(reached)):
                problems.append(f"{where} reaches no heading #{anchor}")
    return problems


def test_github_anchors_are_made_as_github_makes_them():
    assert github_anchor("`notifications`: the original service's contract") == (
        "notifications-the-original-services-contract"
    )
    assert github_anchor("Reading `notifier status`") == "reading-notifier-status"
    assert github_anchor("Replay or redrive?") == "replay-or-redrive"
    assert github_anchor("What is kept where, and how long") == "what-is-kept-where-and-how-long"
    assert github_anchor("[IAM](iam.md) and *more*") == "iam-and-more"


def test_every_link_in_the_readme_and_the_docs_reaches_a_file_and_its_heading():
    assert broken_links(ROOT, pages()) == []


def test_the_link_checks_can_fail(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Project\n\n[map](docs/README.md) [gone](docs/gone.md) [bad anchor](#nowhere)\n"
        "[outside](../elsewhere.md) [site](https://example.com/x.md)\n"
    )
    (tmp_path / "docs" / "README.md").write_text(
        "# Map\n\n## Pages\n\n[page](page.md#a-heading) [wrong](page.md#no-such-heading)\n"
        "```\n[in a code block](not-a-link.md)\n```\n"
    )
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A heading\n\n[up](../README.md)\n")
    assert broken_links(tmp_path, pages(tmp_path)) == [
        "README.md: (docs/gone.md) reaches no file of the repository",
        "README.md: (#nowhere) reaches no heading #nowhere",
        "README.md: (../elsewhere.md) reaches no file of the repository",
        "docs/README.md: (page.md#no-such-heading) reaches no heading #no-such-heading",
    ]


# -- Layout (docs/architecture.md) ---------------------------------------------------------------


def layout_entries() -> list[str]:
    """Every path the Layout block names: ``name`` at its indentation (2 spaces a level), nested
    under the directory entry above it; continuation lines and ``#`` headings name nothing."""
    block = section(page("docs/architecture.md"), "Layout").split("```\n", 2)[1]
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
    assert "notifier/events.py" in entries and "notifier/schema.py" in entries


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
        for name in sorted(tracked)
        if name not in files and not name.startswith(folders) and name not in UNLISTED
    ]
    assert unlisted == []


# -- Configuration (docs/configuration.md) -------------------------------------------------------


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def configuration_tables() -> tuple[dict[str, str], set[str]]:
    """The first table (config.py's variables -> default) and every variable named anywhere in
    the page's tables' first columns."""
    tables = page("docs/configuration.md").split("\n\n")
    tables = [t for t in tables if t.lstrip().startswith("| variable")]
    assert len(tables) == 2, "the Configuration page has two tables"
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


def test_the_longest_delivery_the_docs_name_is_the_defaults():
    settings = Settings(gcp_project="p", svix_api_key="k")
    longest = f"{settings.longest_delivery_seconds:g}"
    assert f"({longest} s with the defaults" in page("docs/configuration.md")


# -- Operator tools (docs/operator-tools.md) -----------------------------------------------------


def test_every_registered_command_is_in_the_operator_tools_page():
    text = page("docs/operator-tools.md")
    for name in REGISTERED:
        assert f"notifier {name}" in text, name


# -- Limits of the HTTP functions (docs/http-api.md) ---------------------------------------------


def test_the_limits_table_has_the_code_s_limits():
    from notifier import canary, http_api, http_body, http_guard

    limits = section(page("docs/http-api.md"), "Limits of the HTTP functions")
    assert f"| {http_guard.MAX_URL_BYTES} bytes |" in limits
    assert f"{http_guard.BODY_CAP:,} bytes (push envelope)" in limits
    assert http_api._PORTAL_BODY_LIMIT == canary.MAX_BODY_BYTES == 16 * 1024
    assert "`app_portal` and `canary` 16 KiB" in limits
    assert f"| {http_body.READ_SECONDS:g} s from the first read |" in limits
