from __future__ import annotations

import pytest

from controller.imageprune.references import (
    InvalidReference,
    Reference,
    Use,
    in_use,
    parse_reference,
    workload_uses,
)
from tests.unit.controller.imageprune.samples import digest, event, stream

HOST = "image-registry.image-registry-system.svc:5000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", Reference("", "nginx", None, None)),
        ("team-a/app:v1", Reference("", "team-a/app", "v1", None)),
        (f"{HOST}/team-a/app:v1", Reference(HOST, "team-a/app", "v1", None)),
        ("localhost/a/b", Reference("localhost", "a/b", None, None)),
        (
            f"127.0.0.1:5000/a/b:t@{digest(1)}",
            Reference("127.0.0.1:5000", "a/b", "t", digest(1)),
        ),
    ],
)
def test_references_parse_as_distribution_parses_them(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["Upper", "a/UPPER", "a/b:", "a/b@sha256:short", "a//b", " a"])
def test_what_breaks_the_grammar_is_no_reference(text: str) -> None:
    assert isinstance(parse_reference(text), str)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Pod", ["spec"]),
        ("Deployment", ["spec", "template", "spec"]),
        ("ReplicationController", ["spec", "template", "spec"]),
        ("CronJob", ["spec", "jobTemplate", "spec", "template", "spec"]),
    ],
)
def test_every_container_list_of_a_workload_is_read(kind: str, path: list[str]) -> None:
    spec = {
        "containers": [{"image": "a"}],
        "initContainers": [{"image": "b"}],
        "ephemeralContainers": [{"image": "c"}],
    }
    obj: dict[str, object] = {"metadata": {"namespace": "n", "name": "w"}}
    node = obj
    for key in path[:-1]:
        node[key] = {}
        node = node[key]  # type: ignore[assignment]
    node[path[-1]] = spec
    assert [u.image for u in workload_uses(kind, obj)] == ["a", "b", "c"]
    assert {u.owner for u in workload_uses(kind, obj)} == {f"{kind} n/w"}


def test_a_tag_of_this_registry_keeps_what_the_tag_points_at_now() -> None:
    streams = [stream("app", {"v1": [event(2), event(1)]})]
    found = in_use([Use("Pod team-a/web", f"{HOST}/team-a/app:v1")], [HOST], streams)
    assert found.digests == {digest(2)}


def test_no_tag_means_latest() -> None:
    streams = [stream("app", {"latest": [event(3)]})]
    assert in_use([Use("Pod p", f"{HOST}/team-a/app")], [HOST], streams).digests == {digest(3)}


def test_a_tag_of_another_registry_keeps_nothing() -> None:
    streams = [stream("app", {"v1": [event(2)]})]
    assert in_use([Use("Pod p", "docker.io/team-a/app:v1")], [HOST], streams).digests == set()


def test_a_digest_keeps_that_digest_whatever_the_host() -> None:
    found = in_use([Use("Pod p", f"mirror.example/x/y@{digest(5)}")], [HOST], [])
    assert found.owners == {digest(5): ("Pod p",)}


def test_an_unparseable_reference_is_reported_not_kept() -> None:
    found = in_use([Use("Pod p", "Not A Reference")], [HOST], [])
    assert found.digests == set()
    assert found.invalid == (
        InvalidReference(
            "Pod p", "Not A Reference", "not an image reference (distribution's grammar)"
        ),
    )
