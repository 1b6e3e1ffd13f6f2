"""The etcd fill's pure parts: where kube-apiserver keeps a custom resource, and what a
create would have stored there."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bench import etcdfill


def test_namespaced_and_cluster_scoped_keys_follow_the_api_servers_layout() -> None:
    stream = {"metadata": {"name": "app", "namespace": "ns"}}
    image = {"metadata": {"name": "img-000001"}}
    assert (
        etcdfill.storage_key("image.alauda.io", "imagestreams", stream)
        == "/registry/image.alauda.io/imagestreams/ns/app"
    )
    assert (
        etcdfill.storage_key("image.alauda.io", "images", image)
        == "/registry/image.alauda.io/images/img-000001"
    )


def test_stored_objects_carry_what_a_create_sets_but_no_resource_version() -> None:
    sample: dict[str, Any] = {
        "metadata": {"name": "img", "resourceVersion": "7"},
        "dockerImageReference": "r",
    }
    stored = etcdfill.stored(sample)
    assert "resourceVersion" not in stored["metadata"]
    assert stored["metadata"]["creationTimestamp"] == etcdfill.CREATED
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["uid"] == etcdfill.stored(sample)["metadata"]["uid"]
    assert stored["dockerImageReference"] == "r"
    assert sample["metadata"]["resourceVersion"] == "7"  # the sample is not changed
    kept = etcdfill.stored({"metadata": {"name": "s", "uid": "u", "generation": 2}})
    assert (kept["metadata"]["uid"], kept["metadata"]["generation"]) == ("u", 2)


def test_a_transaction_puts_every_object_under_its_key() -> None:
    objects = [{"metadata": {"name": f"img-{i}"}} for i in range(3)]
    body = etcdfill.txn_body("g", "images", objects)
    puts = [op["requestPut"] for op in body["success"]]
    keys = [base64.b64decode(put["key"]).decode() for put in puts]
    assert keys == [f"/registry/g/images/img-{i}" for i in range(3)]
    values = [json.loads(base64.b64decode(put["value"])) for put in puts]
    assert [v["metadata"]["name"] for v in values] == ["img-0", "img-1", "img-2"]


def test_the_etcd_url_is_the_one_the_api_server_was_started_with() -> None:
    argv = ["kube-apiserver", "--etcd-servers=http://127.0.0.1:2379,http://b:2379", "--v=1"]
    assert etcdfill.etcd_url(argv) == "http://127.0.0.1:2379"
    with pytest.raises(ValueError, match="etcd-servers"):
        etcdfill.etcd_url(["kube-apiserver"])
