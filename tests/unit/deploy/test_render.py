"""deploy/render.py, the one tool that fills the JSON templates deploy.sh sends: values land inside
the parsed document (any character stays valid JSON), and a template and its values must fit
exactly, so a renamed placeholder cannot slip through as a literal ``@NAME@``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.deploy.running import ROOT

RENDER = ROOT / "deploy" / "render.py"


def render(template: dict | str, *values: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / "template.json"
    path.write_text(template if isinstance(template, str) else json.dumps(template))
    return subprocess.run(
        [sys.executable, str(RENDER), str(path), *values],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_values_are_placed_inside_the_document_whatever_characters_they_hold(tmp_path):
    template = {"displayName": "@NAME@ alert", "filter": 'metric.type="@METRIC@"', "n": 1}
    hostile = 'a "quoted" \\ name\nwith a newline'
    done = render(template, f"NAME={hostile}", "METRIC=logging/user/x", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "displayName": f"{hostile} alert",
        "filter": 'metric.type="logging/user/x"',
        "n": 1,
    }


def test_a_whole_placeholder_takes_a_number_or_a_list(tmp_path):
    template = {"threshold": "@LIMIT@", "channels": "@CHANNELS@", "none": "@EMPTY@"}
    done = render(template, "LIMIT:=2.5", "CHANNELS[]=c1", "CHANNELS[]=c2", "EMPTY[]", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"threshold": 2.5, "channels": ["c1", "c2"], "none": []}


def test_get_prints_the_named_text_fields(tmp_path):
    template = tmp_path / "template.json"
    template.write_text(json.dumps({"displayName": "@N@", "x": 1}))
    done = subprocess.run(
        [sys.executable, str(RENDER), str(template), "--get", "displayName", "N=notifier backlog"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "notifier backlog\n"


@pytest.mark.parametrize(
    ("template", "values", "said"),
    [
        ({"a": "@MISSING@"}, [], "no value given for @MISSING@"),
        ({"a": "x"}, ["EXTRA=1"], "no placeholder for EXTRA"),
        ({"a": "@N@"}, ["N:=ten"], "takes a JSON number"),
        ({"a": "@N@"}, ["N=1", "N=2"], "given twice"),
        ({"a": "in @L@ text"}, ["L[]=x"], "its value is a list"),
        ("{not json", [], "template.json"),
    ],
)
def test_a_template_and_values_that_do_not_fit_are_refused(tmp_path, template, values, said):
    done = render(template, *values, tmp=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert said in done.stderr


def test_every_template_deploy_fills_is_json_with_placeholders_only_in_strings():
    templates = sorted((ROOT / "monitoring").rglob("*.json"))
    assert {p.parent.name for p in templates} >= {"metrics", "policies", "monitoring"}
    for path in templates:
        json.loads(path.read_text())  # a template is a JSON document before it is filled
