"""``./deploy.sh --dry-run`` plans what it planned before it was split into deploy/: for every
recorded case (plans/cases.json) the same lines in the same order, each JSON document the same
once parsed, each file the plan says it wrote holding what it shows, and the same warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.deploy.recorded import CASES, comparable, localised, recorded, run_case, written


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_plan_is_the_recorded_one(tmp_path, name):
    printed, before = run_case(name, tmp_path), recorded(name)
    assert comparable(printed.stdout) == comparable(before.stdout)
    for path, document in written(printed.stdout).items():
        assert json.loads(Path(localised(path)).read_text()) == document, path
    assert printed.stderr == before.stderr


def test_the_comparison_sees_a_changed_json_value_and_ignores_its_spacing():
    before = recorded("default").stdout
    policy = next(line for line in before.splitlines() if "--policy=" in line)
    spaced = policy.replace('"combiner":"OR"', '"combiner": "OR"')
    changed = policy.replace('"combiner":"OR"', '"combiner":"AND"')
    assert comparable(before.replace(policy, spaced)) == comparable(before)
    assert comparable(before.replace(policy, changed)) != comparable(before)
