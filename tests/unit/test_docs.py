"""The docs' checkable claims, where the text lives: README.md is the front door (short), docs/
holds the rest. Every link and anchor resolves, every repository path they name exists, no page is
an orphan; the Layout block is the repository's, the configuration tables name exactly the
variables the code reads (with config.py's defaults), and the limits, commands and metrics they
name are the code's."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from notifier.cli.commands import REGISTERED
from notifier.config import Settings
from tests import offline

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250
ENV_NAME = re.compile(r"(?:NOTIFIER|SVIX|GOOGLE|GCLOUD|FIRESTORE|PUBSUB|K)_[A-Z0-9_]+")
# Files the layout leaves out on purpose.
UNLISTED = {"README.md", ".gitignore"}
# Untracked folders a checkout grows (never part of the repository's paths).
UNTRACKED = {".git", ".venv", ".run", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis"}
# A bare file name in backticks with one of these endings names a file of the repository.
REPO_FILE = re.compile(r"[\w.-]+\.(?:py|sh|md|json|toml|txt)")
FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def every_page(root: Path = ROOT) -> list[Path]:
    """The pages, and the top-level ones beside the README (SCALING.md, BENCHMARKS.md)."""
    return [*pages(root), *sorted(p for p in root.glob("*.md") if p.name != "README.md")]


def page(relative: str) -> str:
    return (ROOT / relative).read_text()


def prose(text: str) -> str:
    """The text without its fenced blocks (their lines kept, blank), where links and headings
    count."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def fenced_blocks(text: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(text)]


def code_spans(text: str) -> list[str]:
    return [" ".join(span.split()) for span in CODE_SPAN.findall(prose(text))]


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


def orphans(root: Path) -> list[str]:
    """Pages under docs/ that neither README.md nor an index reachable from it links. An index is
    a folder's README.md: the map of docs/, the runbook, the decision records."""
    reached, todo = set(), [(root / "README.md").resolve()]
    while todo:
        index = todo.pop()
        for _, target, _ in local_links(index):
            if target in reached or target == index:
                continue
            reached.add(target)
            if target.name == "README.md" and target.exists():
                todo.append(target)
    return [relative(p, root) for p in pages(root)[1:] if p.resolve() not in reached]


def test_github_anchors_are_made_as_github_makes_them():
    assert github_anchor("`notifications`: the original service's contract") == (
        "notifications-the-original-services-contract"
    )
    assert github_anchor("Reading `notifier status`") == "reading-notifier-status"
    assert github_anchor("Replay or redrive?") == "replay-or-redrive"
    assert github_anchor("What is kept where, and how long") == "what-is-kept-where-and-how-long"
    assert github_anchor("[IAM](iam.md) and *more*") == "iam-and-more"


def test_every_link_in_the_readme_and_the_docs_reaches_a_file_and_its_heading():
    assert broken_links(ROOT, every_page()) == []


def test_every_docs_page_is_linked_from_the_readme_or_an_index():
    assert orphans(ROOT) == []


def test_the_link_checks_can_fail(tmp_path):
    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "README.md").write_text(
        "# Project\n\n[map](docs/README.md) [gone](docs/gone.md) [bad anchor](#nowhere)\n"
        "[outside](../elsewhere.md) [site](https://example.com/x.md)\n"
    )
    (tmp_path / "docs" / "README.md").write_text(
        "# Map\n\n## Pages\n\n[page](page.md#a-heading) [wrong](page.md#no-such-heading)\n"
        "```\n[in a code block](not-a-link.md)\n```\n"
    )
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A heading\n\n[up](../README.md)\n")
    (tmp_path / "docs" / "deep" / "orphan.md").write_text("# Orphan\n")
    assert broken_links(tmp_path, pages(tmp_path)) == [
        "README.md: (docs/gone.md) reaches no file of the repository",
        "README.md: (#nowhere) reaches no heading #nowhere",
        "README.md: (../elsewhere.md) reaches no file of the repository",
        "docs/README.md: (page.md#no-such-heading) reaches no heading #no-such-heading",
    ]
    assert orphans(tmp_path) == ["docs/deep/orphan.md"]


# -- Paths the docs name --------------------------------------------------------------------------


def tracked_files(root: Path) -> set[str]:
    """The repository's files: git's list in a checkout, else what is on disk."""
    if shutil.which("git") is not None and (root / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.split()
        return {name for name in listed if (root / name).exists()}
    return {
        relative(path, root)
        for path in root.rglob("*")
        if path.is_file() and not set(path.relative_to(root).parts) & UNTRACKED
    }


def missing_paths(root: Path, files: Iterable[Path], tracked: set[str]) -> list[str]:
    """Repository paths the pages name that do not exist. A path is one that starts at a
    top-level file or folder of the repository (``notifier/store.py``, ``monitoring/``), in
    backticks or in a code block, or a bare file name in backticks (``wiring.py``), which must be
    some file's name; other paths (``notifications/{key}``, Svix's ``core/idempotency.rs``) are
    not the repository's."""
    top = sorted({name.split("/")[0] for name in tracked}, key=len, reverse=True)
    names = {name.rsplit("/", 1)[-1] for name in tracked}
    starts = "|".join(re.escape(t) for t in top)
    in_code = re.compile(rf"(?<![\w./-])((?:{starts})(?:/[\w.-]*)*)(?![\w-])")
    problems = []
    for path in files:
        text = path.read_text()
        named = [span for span in code_spans(text) if re.fullmatch(r"[\w./-]+", span)]
        named += [m for block in fenced_blocks(text) for m in in_code.findall(block) if "/" in m]
        for name in dict.fromkeys(n.removeprefix("./").rstrip(".") for n in named):
            first = name.split("/")[0]
            if first in top and "/" in name:
                found = (root / name).exists()
            elif first in top or REPO_FILE.fullmatch(name):
                found = name in names or (root / name).exists()
            else:
                continue
            if not found:
                problems.append(f"{relative(path, root)}: {name}")
    return problems


def test_every_repository_path_the_docs_name_exists():
    assert missing_paths(ROOT, every_page(), tracked_files(ROOT)) == []


def test_the_path_check_can_fail(tmp_path):
    for name in ("notifier/store.py", "deploy.sh", "monitoring/dashboard.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    tracked = {"notifier/store.py", "deploy.sh", "monitoring/dashboard.json"}
    (tmp_path / "README.md").write_text(
        "`notifier/store.py`, `deploy.sh`, `monitoring/`, `store.py`, `notifications/{key}`,\n"
        "`core/idempotency.rs`, `notifier/gone.py`, `wiring.py`, `./deploy.sh`.\n"
        "```sh\ncat notifier/store.py monitoring/missing.json .venv/bin/notifier\n```\n"
    )
    assert missing_paths(tmp_path, [tmp_path / "README.md"], tracked) == [
        "README.md: notifier/gone.py",
        "README.md: wiring.py",
        "README.md: monitoring/missing.json",
    ]


# -- The front door -------------------------------------------------------------------------------


def test_the_readme_is_a_short_front_door():
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_the_readme_links_the_docs_map_the_runbook_and_the_decision_records():
    linked = {reached for _, reached, _ in local_links(README)}
    for index in ("docs/README.md", "docs/operations/README.md", "docs/decisions/README.md"):
        assert (ROOT / index).resolve() in linked, index


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))


def named_in_code(pattern: str) -> set[str]:
    """What ``pattern``'s group matches in the code spans and code blocks of every page."""
    named = set()
    for path in pages():
        text = path.read_text()
        for snippet in [*code_spans(text), *fenced_blocks(text)]:
            named.update(re.findall(pattern, snippet))
    return named


def test_every_make_target_the_docs_name_exists():
    named = named_in_code(r"(?<![\w-])make (\w+)")
    assert named >= {"run", "test", "unit", "lint", "serve", "bench"}
    assert named <= makefile_targets()


def test_every_notifier_command_the_docs_name_is_registered():
    named = named_in_code(r"(?<![\w./-])(?:\S*/)?notifier (\w[\w-]*)")
    assert named == set(REGISTERED)


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
    assert "notifier/domain/decoding.py" in entries and "notifier/domain/schema.py" in entries


def test_every_path_in_the_layout_exists():
    missing = [entry for entry in layout_entries() if not (ROOT / entry).exists()]
    assert missing == []


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_every_file_in_the_repository_is_in_the_layout():
    tracked = tracked_files(ROOT)
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
    named = {m for p in pages() for m in re.findall(r"([\d.]+) s with the defaults", p.read_text())}
    assert named == {longest}


# -- Operator tools (docs/operator-tools.md) -----------------------------------------------------


def test_every_registered_command_is_in_the_operator_tools_page():
    text = page("docs/operator-tools.md")
    for name in REGISTERED:
        assert f"notifier {name}" in text, name


# -- What happens to an event (docs/delivery.md) -------------------------------------------------


def test_the_identifier_rule_and_the_depth_limit_are_the_decoder_s():
    from notifier.domain import decoding, events

    text = " ".join(page("docs/delivery.md").split())
    assert f"(`{events.SAFE_ID.pattern}`)" in text
    assert f"nesting deeper than {decoding.MAX_DEPTH} levels" in text
    prefixes = events.SVIX_RESERVED_PREFIXES
    assert f"an event id starting `{prefixes['id']}`" in text
    assert f"a project starting `{prefixes['project']}`" in text


# -- Limits of the HTTP functions (docs/http-api.md) ---------------------------------------------


def test_the_limits_table_has_the_code_s_limits():
    from notifier.handlers import app_portal, canary, http_body, http_guard, operational_webhooks

    limits = section(page("docs/http-api.md"), "Limits of the HTTP functions")
    assert f"| {http_guard.MAX_URL_BYTES} bytes |" in limits
    assert f"{http_guard.BODY_CAP:,} bytes (push envelope)" in limits
    assert app_portal.MAX_BODY_BYTES == canary.MAX_BODY_BYTES == 16 * 1024
    assert operational_webhooks.MAX_BODY_BYTES == 16 * 1024
    assert "`app_portal`, `canary` and `operational_webhooks` 16 KiB" in limits
    assert f"| {http_body.READ_SECONDS:g} s from the first read |" in limits


# -- Metrics (docs/logs.md, docs/operations/alerts.md) -------------------------------------------


def metrics_deploy_sh_creates(tmp: Path) -> set[str]:
    """The log-based metrics in ``./deploy.sh --dry-run``'s plan (no credentials, no gcloud
    configuration read)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "CLOUDSDK_CONFIG": str(tmp / "gcloud-config"),
        "LANG": "C.UTF-8",
        **offline.ENV,
    }
    done = subprocess.run(
        [str(ROOT / "deploy.sh"), "--dry-run", "--project", "demo-proj"],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(re.findall(r"^\+ gcloud logging metrics create (\S+)", done.stdout, flags=re.M))


def test_the_metrics_the_docs_name_are_those_deploy_sh_creates(tmp_path):
    created = metrics_deploy_sh_creates(tmp_path)
    assert "notifier_sent" in created
    metric = re.compile(r"notifier_[a-z_]+[a-z]")
    table = section(page("docs/logs.md"), "Log-based metrics")
    assert set(metric.findall(table)) == created
    assert set(metric.findall(page("docs/operations/alerts.md"))) == created
