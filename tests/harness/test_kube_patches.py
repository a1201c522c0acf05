"""Merge patch (RFC 7386) and JSON Patch (RFC 6902) as the emulated API server applies them."""

import pytest

from tests.harness.kube.patches import PatchError, json_patch, merge_patch


def test_merge_patch_merges_dicts_deletes_nulls_and_replaces_lists():
    target = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"items": [1, 2]}}
    patched = merge_patch(target, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"items": [3]}})
    assert patched == {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"items": [3]}}
    assert target["metadata"]["labels"] == {"a": "1", "b": "2"}  # a new document, the old one unchanged


def test_merge_patch_replaces_non_dicts_wholesale():
    assert merge_patch({"a": 1}, [1]) == [1]
    assert merge_patch("x", {"a": {"b": None}}) == {"a": {}}


def test_json_patch_applies_to_a_copy():
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "x"}]}}
    patched = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
            {"op": "replace", "path": "/spec/containers/0/name", "value": "y"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "z"}},
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "remove", "path": "/metadata/labels/a"},
        ],
    )
    assert patched == {
        "metadata": {"labels": {"b/c": "2"}},
        "spec": {"containers": [{"name": "y"}, {"name": "z"}]},
    }
    assert doc["metadata"]["labels"] == {"a": "1"}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing/deeper", "value": 1}],
        [{"op": "frobnicate", "path": "/a"}],
        ["not an operation"],
    ],
)
def test_json_patch_that_does_not_apply_is_a_patch_error(operations):
    with pytest.raises(PatchError):
        json_patch({"a": 1}, operations)
