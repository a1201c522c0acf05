"""Label and field selectors, as ``?labelSelector=`` and ``?fieldSelector=`` spell them.

Each parser turns a selector string into a predicate; an empty selector matches everything.
Label terms: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``.
Field terms: ``path=v``, ``path==v``, ``path!=v`` over dotted paths such as ``metadata.name``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict], bool]

_SET_TERM = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQUALITY_TERM = re.compile(r"^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$")
_EXISTENCE_TERM = re.compile(r"^(!?)\s*([^\s!=()]+)$")


class SelectorError(ValueError):
    """A selector that does not parse (the API answers 400 Bad Request)."""


def _split_terms(selector: str) -> list[str]:
    """Split at top-level commas: the commas inside ``in (a,b)`` belong to their term."""
    terms, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def _label_check(term: str) -> Predicate:
    if m := _SET_TERM.match(term):
        key, op = m.group(1), m.group(2)
        values = {v.strip() for v in m.group(3).split(",") if v.strip()}
        if op == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: key not in labels or labels[key] not in values
    if m := _EQUALITY_TERM.match(term):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    if m := _EXISTENCE_TERM.match(term):
        negated, key = m.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {term!r}")


def parse_label_selector(selector: str | None) -> Predicate:
    """A predicate over a labels dict; supports equality, set and existence terms."""
    if not selector:
        return lambda labels: True
    checks = [_label_check(term) for term in _split_terms(selector)]
    return lambda labels: all(check(labels) for check in checks)


def field_value(obj: dict, path: str) -> str:
    """The value at a dotted path as a field selector compares it: a string, ``""`` if absent."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _field_check(term: str) -> Predicate:
    m = _EQUALITY_TERM.match(term)
    if not m:
        raise SelectorError(f"invalid field selector: {term!r}")
    path, op, value = m.groups()
    if op == "!=":
        return lambda obj: field_value(obj, path) != value
    return lambda obj: field_value(obj, path) == value


def parse_field_selector(selector: str | None) -> Predicate:
    """A predicate over a whole object; ``path=value``, ``path==value``, ``path!=value``."""
    if not selector:
        return lambda obj: True
    checks = [_field_check(term) for term in _split_terms(selector)]
    return lambda obj: all(check(obj) for check in checks)
