"""Projections keep what they name, and keep an unexpected shape whole."""

from __future__ import annotations

from kube.transforms import identity, project, projection, strip_managed_fields


def test_a_projection_keeps_the_named_keys_of_objects_and_of_each_list_item() -> None:
    value = {"spec": {"tags": [{"name": "v1", "from": {"x": 1}}, "odd"], "other": 1}, "b": 2}
    assert project(value, {"spec": {"tags": [{"name": True}]}}) == {
        "spec": {"tags": [{"name": "v1"}, "odd"]}
    }


def test_an_unexpected_shape_is_kept_whole_for_the_rules_to_judge() -> None:
    assert project({"spec": "broken"}, {"spec": {"limits": True}}) == {"spec": "broken"}
    assert project({"spec": {"limits": {"a": 1}}}, {"spec": {"limits": [True]}}) == {
        "spec": {"limits": {"a": 1}}
    }


def test_every_projection_keeps_the_identity_and_drops_managed_fields() -> None:
    meta = {
        "name": "n",
        "namespace": "a",
        "uid": "u",
        "resourceVersion": "3",
        "deletionTimestamp": "t",
        "labels": {"x": "y"},
        "managedFields": [{}],
    }
    obj = {"metadata": meta, "spec": {"a": 1}}
    kept = {k: meta[k] for k in ("name", "namespace", "resourceVersion", "deletionTimestamp")}
    assert projection({})(obj) == {"metadata": kept}
    assert projection({"metadata": {"labels": True}})(obj) == {
        "metadata": {**kept, "labels": {"x": "y"}}
    }
    assert identity({"spec": {}}) == {"metadata": {}}
    assert strip_managed_fields(obj) == {
        "metadata": {**kept, "uid": "u", "labels": {"x": "y"}},
        "spec": {"a": 1},
    }
    assert strip_managed_fields({"spec": 1}) == {"spec": 1}
