#!/usr/bin/env python3
"""Fills a JSON template (monitoring/*.json) for deploy.sh, inside the parsed document: never by
pasting text, so a value can hold any character and the output is always valid JSON.

    render.py TEMPLATE [--get KEY]... [NAME=TEXT | NAME:=NUMBER | NAME[]=TEXT | NAME[]]...

``@NAME@`` inside a string of the template is replaced by the value's text; a string that is
exactly ``@NAME@`` becomes the value itself: a number (``NAME:=5``) or a list of strings
(``NAME[]=a NAME[]=b``; ``NAME[]`` alone: an empty list). Every placeholder must be given a value
and every value must be used. Prints the document as one line of JSON, or with ``--get KEY`` the
text of each top-level string field KEY, one per line. Exit status 2 on any mistake. Standard
library only: deploy.sh runs it with whatever Python it has.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
FORMS = "NAME=TEXT, NAME:=NUMBER, NAME[]=TEXT or NAME[]"
USAGE = f"usage: render.py TEMPLATE [--get KEY]... [VALUE...], each VALUE {FORMS}"


class TemplateError(Exception):
    """The template and the values given do not fit."""


def values_of(assignments: list[str]) -> dict[str, Any]:
    """``NAME=TEXT``, ``NAME:=NUMBER``, ``NAME[]=TEXT`` (appended) and ``NAME[]`` (a list)."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)(\[\]|:)?(?:=(.*))?", assignment, re.S)
        if not match or (match[2] != "[]" and match[3] is None):
            raise TemplateError(f"not {FORMS}: {assignment!r}")
        name, kind, text = match[1], match[2], match[3]
        if kind == "[]":
            items = values.setdefault(name, [])
            if not isinstance(items, list):
                raise TemplateError(f"{name} is given as a list and as a value")
            if text is not None:
                items.append(text)
        elif name in values:
            raise TemplateError(f"{name} is given twice")
        elif kind == ":":
            values[name] = number(name, text)
        else:
            values[name] = text
    return values


def number(name: str, text: str) -> int | float:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TemplateError(f"{name}:= takes a JSON number, not {text!r}")
    return value


def filled(node: Any, values: dict[str, Any], used: set[str]) -> Any:
    """``node`` with every placeholder replaced; ``used`` collects the names replaced."""
    if isinstance(node, dict):
        return {key: filled(value, values, used) for key, value in node.items()}
    if isinstance(node, list):
        return [filled(item, values, used) for item in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node)
    if whole:
        used.add(whole[1])
        return value_of(whole[1], values)
    return PLACEHOLDER.sub(lambda match: text_of(match[1], values, used), node)


def value_of(name: str, values: dict[str, Any]) -> Any:
    if name not in values:
        raise TemplateError(f"no value given for @{name}@")
    return values[name]


def text_of(name: str, values: dict[str, Any], used: set[str]) -> str:
    used.add(name)
    value = value_of(name, values)
    if isinstance(value, list):
        raise TemplateError(f"@{name}@ is inside a text, but its value is a list")
    return value if isinstance(value, str) else json.dumps(value)


def render(template: Path, values: dict[str, Any]) -> Any:
    """The template's document with ``values`` in place of its placeholders."""
    used: set[str] = set()
    document = filled(json.loads(template.read_text()), values, used)
    unused = sorted(set(values) - used)
    if unused:
        raise TemplateError(f"{template.name} has no placeholder for {', '.join(unused)}")
    return document


def fields(document: Any, keys: list[str]) -> list[str]:
    """The text of each top-level string field in ``keys``: one line each."""
    lines = []
    for key in keys:
        value = document.get(key) if isinstance(document, dict) else None
        if not isinstance(value, str) or "\n" in value:
            raise TemplateError(f"--get {key}: not a one-line text field of the document")
        lines.append(value)
    return lines


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    template, rest, keys = Path(argv[0]), argv[1:], []
    while rest[:1] == ["--get"] and len(rest) >= 2:
        keys.append(rest[1])
        rest = rest[2:]
    try:
        document = render(template, values_of(rest))
        line = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        lines = fields(document, keys) if keys else [line]
    except (OSError, ValueError, TemplateError) as exc:
        print(f"render.py: {template}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
