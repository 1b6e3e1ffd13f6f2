"""The benchmarks' one set of sample objects: consistent with each other, and the only one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench import samples
from quota.measure import recorded_image_size, stream_usage

BENCH = Path(samples.__file__).parent
SAMPLE_KINDS = re.compile(
    r'"kind":\s*"(ImageStream|Image|ServiceAccount|LimitRange|ResourceQuota|PushReview)"'
)
"""The kinds ``bench.samples`` builds (an AdmissionReview is also a no-op webhook's answer)."""


def test_no_other_benchmark_module_spells_a_sample_object() -> None:
    spelled = {
        path.name: SAMPLE_KINDS.findall(path.read_text())
        for path in sorted(BENCH.glob("*.py"))
        if path.name != "samples.py"
    }
    assert not {name: kinds for name, kinds in spelled.items() if kinds}


def test_a_push_review_names_the_layers_and_sizes_of_its_image() -> None:
    image = samples.image("team-a", 7, layers=3)
    spec = json.loads(samples.push_review("team-a", "v1", 7, layers=3))["spec"]
    assert spec["digest"] == samples.digest(7)
    assert spec["config"]["digest"] == image["dockerImageConfig"]["digest"]
    assert [(layer["digest"], layer["size"]) for layer in spec["layers"]] == [
        (layer["name"], layer["size"]) for layer in image["dockerImageLayers"]
    ]
    assert recorded_image_size(image) == image["dockerImageMetadata"]["size"]


def test_a_stream_holds_its_tags_and_history_numbered_from_its_first_image() -> None:
    first = samples.imagestream("ns", "a", tags=2, history=3)
    second = samples.imagestream("ns", "b", tags=2, history=3, first_image=6)
    assert len(stream_usage(first).tags) == 2
    assert len(stream_usage(first).images) == 6
    assert not stream_usage(first).images & stream_usage(second).images
    assert first["status"]["tags"][0]["items"][0] == samples.history_item("ns", "a", 0)


def test_a_create_carries_no_field_the_api_server_sets() -> None:
    stored = samples.imagestream("ns", "app", tags=1, history=1)
    body = samples.created(stored)
    assert "status" not in body
    assert not set(samples.SERVER_FIELDS) & set(body["metadata"])
    assert body["spec"] == stored["spec"] and "uid" in stored["metadata"]


def test_an_admission_review_is_of_the_objects_namespace() -> None:
    account = samples.serviceaccount("team-b", "builder")
    review = json.loads(
        samples.admission_review("", "ServiceAccount", "serviceaccounts", "CREATE", account)
    )
    assert review["request"]["namespace"] == "team-b"
    assert review["request"]["object"] == account
