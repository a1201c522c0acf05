"""Label and field selectors of the emulated API server (tests/harness/kube/selectors.py)."""

import pytest

from tests.harness.kube.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"component": "singleuser-server", "tier": "x"}


@pytest.mark.parametrize(
    "selector, matches",
    [
        (None, True),
        ("", True),
        ("component=singleuser-server", True),
        ("component==singleuser-server", True),
        ("component=singleuser-server,tier=x", True),
        ("component=singleuser-server,tier=y", False),
        ("component!=other", True),
        ("absent!=other", True),
        ("component", True),
        ("!component", False),
        ("!absent", True),
        ("tier in (x, y)", True),
        ("tier in (y)", False),
        ("absent in (x)", False),
        ("tier notin (y,z)", True),
        ("absent notin (y)", True),
        ("tier in (x,y), component", True),
    ],
)
def test_label_selector(selector, matches):
    assert parse_label_selector(selector)(LABELS) is matches


def test_label_selector_rejects_what_does_not_parse():
    with pytest.raises(SelectorError):
        parse_label_selector("a b c")


@pytest.mark.parametrize(
    "selector, matches",
    [
        ("metadata.name=jupyter-a", True),
        ("metadata.name==jupyter-a", True),
        ("metadata.name!=jupyter-a", False),
        ("status.phase=Running,metadata.name=jupyter-a", True),
        ("spec.hostNetwork=false", True),  # booleans compare as Kubernetes prints them
        ("spec.nodeName=", True),  # absent compares as empty
        ("metadata.name.deeper=x", False),
    ],
)
def test_field_selector(selector, matches):
    pod = {"metadata": {"name": "jupyter-a"}, "spec": {"hostNetwork": False}, "status": {"phase": "Running"}}
    assert parse_field_selector(selector)(pod) is matches


def test_field_selector_accepts_only_equality():
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")
