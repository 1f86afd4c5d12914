"""``make mutate``: mutmut on the delivery core, then every survivor checked against the docs.

The core is the exactly-once use case, the lease keeper that renews its claims, and the store's
claim code with the protobuf writes and read it makes. Their tests (pyproject.toml's
``[tool.mutmut]``) run on one Firestore emulator started here for every mutant's run. Every
mutant that no test kills must be one that docs/testing.md explains as equivalent; the run fails
naming any other. Not in CI: it takes minutes, and mutmut's cache (``mutants/``) stays local.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from devstack import emulators

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "testing.md"
ATTACH = "NOTIFIER_TEST_FIRESTORE_EMULATOR"  # tests/conftest.py uses this emulator
STORE = "notifier.adapters.firestore.store.xǁFirestoreStoreǁ"
CLAIM_CODE = (
    *("claim", "look", "_read", "_claim_known", "_claim_existing", "mark_sent", "mark_failed"),
    *("release", "renew", "_holder_update", "_update_unless_changed"),
)
TARGETS = [
    "notifier.usecases.exactly_once.*",
    "notifier.usecases.leases.*",
    *(f"{STORE}{name}__mutmut_*" for name in CLAIM_CODE),
    "notifier.adapters.firestore.writes.*",  # the claim's create and mark_sent, as protobufs
    "notifier.adapters.firestore.reads.*",  # the claim's and the look's read
]
HANGING = "### Mutants that make the tests wait forever"  # docs/testing.md's second table
# A test failed. A timeout is not counted: on a loaded machine a survivor's slow tests time out
# too; it is reported, to re-run on an idle machine.
CAUGHT = {"killed"}


def mutmut() -> str:
    found = shutil.which("mutmut", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("mutmut is not installed: make mutate installs requirements-mutate.txt")
    return found


def results() -> dict[str, str]:
    """Each targeted mutant's status as ``mutmut results --all`` reports it."""
    done = subprocess.run(
        [mutmut(), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", done.stdout, re.MULTILINE))
    return {name: status for name, status in found.items() if targeted(name)}


def targeted(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TARGETS)


def explained(table: str = "equivalent") -> set[str]:
    """The mutants a table of docs/testing.md names: its survivors explained as equivalent, or
    (``table="hanging"``) the mutants whose tests wait forever, caught by mutmut's time limit."""
    text = DOCS.read_text()
    start = text.index(HANGING)
    part = text[start : text.index("\n#", start)] if table == "hanging" else text[:start]
    return set(re.findall(r"^\| `(\S+__mutmut_\d+)` \|", part, re.MULTILINE))


def main() -> int:
    log = ROOT / ".run" / "mutate-firestore.log"
    with emulators.start_firestore("notifier-test", log_path=log) as emulator:
        # mutmut runs the tests in a copy (mutants/) without the .venv that deploy.sh's dry run
        # (the index check) takes its Python from: python3 is this one.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, ATTACH: emulator.host_port, "PATH": path}
        subprocess.run([mutmut(), "run", *TARGETS], cwd=ROOT, env=env, check=False)
    statuses = results()
    if not statuses:
        print("make mutate: mutmut reported no mutant of the delivery core", file=sys.stderr)
        return 1
    equivalent, hanging = explained(), explained("hanging")
    open_ = sorted(
        n
        for n, status in statuses.items()
        if status not in CAUGHT | {"survived"} and not (status == "timeout" and n in hanging)
    )
    unexplained = sorted(
        n for n, status in statuses.items() if status == "survived" and n not in equivalent
    )
    caught = sum(status in CAUGHT for status in statuses.values())
    print(f"\nmake mutate: {len(statuses)} mutants of the delivery core, {caught} caught")
    for name in sorted(equivalent - statuses.keys()):
        print(f"  docs/testing.md names {name}, which this run did not make (renumbered?)")
    for name in sorted(n for n in equivalent & statuses.keys() if statuses[n] in CAUGHT):
        # an equivalent mutant cannot fail a test: a kill here is a test failing for another
        # reason (the machine's load, a flaky test), and may hide a real survivor elsewhere
        print(f"  {name}: explained as equivalent, yet killed: a spurious kill, re-run")
    for name in open_:
        print(f"  {name}: {statuses[name]}")
    for name in unexplained:
        print(f"  {name}: survived, and docs/testing.md does not explain it")
    return 1 if open_ or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
