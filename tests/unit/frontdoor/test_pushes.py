"""A manifest PUT: judged first, then written in the order that keeps the registry and the
Image API consistent (ImageStream and charge, Image, registry, tag), undone where needed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from frontdoor import distribution as oci
from frontdoor.manifests import OCI_INDEX, OCI_MANIFEST
from frontdoor.pushes import (
    MAX_INDEX_CHILDREN,
    MAX_INDEX_DEPTH,
    MAX_PUSH_MANIFESTS,
    ManifestPut,
    ManifestPuts,
    PushDenied,
)
from frontdoor.readonly import READ_ONLY_MESSAGE
from frontdoor.records import Denied, RecordFailed, StreamGone
from frontdoor.streammemory import StreamMemory
from frontdoor.upstream import UpstreamResponse
from quota.decision import Cause, Decision
from quota.objects import Obj
from quota.push import Push
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST

HOST = "registry.example:5000"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


HELD: dict[str, int] = {}
"""The size of each blob the registry fakes hold: a digest names its content, so one
digest has one size in every test; ``image_manifest`` adds the blobs it names."""


def blob_digest(kind: str, size: int) -> str:
    """A distinct blob of ``size`` bytes, held by the registry fakes."""
    held = digest(f"{kind} of {size} bytes".encode())
    HELD[held] = size
    return held


def image_manifest(*layer_sizes: int, config_size: int = 10) -> bytes:
    layers = [
        {"mediaType": LAYER, "digest": blob_digest(f"layer {i}", size), "size": size}
        for i, size in enumerate(layer_sizes)
    ]
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": blob_digest("config", config_size),
        "size": config_size,
    }
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    return json.dumps(body).encode()


def index_of(*children: bytes) -> bytes:
    manifests = [{"mediaType": OCI_MANIFEST, "digest": digest(c), "size": len(c)} for c in children]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


class Judge:
    """Judges with ``deny``; charges storage with ``deny_storage``, writing
    ``charge_storage`` into ``calls`` (a journal's, to see the order of every write)."""

    def __init__(
        self,
        deny: str = "",
        cause: Cause = Cause.IMAGE_STORAGE_LIMIT,
        *,
        deny_storage: str = "",
        fail_storage: int = 0,
        calls: list[str] | None = None,
    ) -> None:
        self.deny = deny
        self.cause = cause
        self.deny_storage = deny_storage
        self.fail_storage = fail_storage
        self.calls = [] if calls is None else calls
        self.seen: list[Push] = []
        self.charged: list[Push] = []

    def judge(self, push: Push) -> Decision:
        self.seen.append(push)
        return Decision.deny(self.deny, self.cause) if self.deny else Decision.allow()

    def charge_storage(self, push: Push) -> Decision:
        self.calls.append("charge_storage")
        self.charged.append(push)
        if self.fail_storage:
            raise ApiException(status=self.fail_storage, reason="Too Many Requests")
        if self.deny_storage:
            return Decision.deny(self.deny_storage, Cause.QUOTA_EXCEEDED)
        return Decision.allow()


class Journal:
    """Records and registry in one: the order of every write across both."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.stream_exists = False
        self.deny_create = ""
        self.deny_tag = ""
        self.fail_tag = False
        self.registry_status = 201
        self.manifests: dict[str, bytes] = {}
        self.images: list[Obj] = []
        self.existing_images: set[str] = set()
        self.tags: list[tuple[str, str, str]] = []
        self.held: dict[str, int | None] = {}
        """Blob sizes unlike ``HELD`` (None: the registry lacks the blob)."""
        self.heads: list[str] = []
        self.version = 0
        """The resourceVersion of the stream's last tag write."""
        self.remembered: list[bool] = []
        """Each tag write's ``remembered``: its stream came from the memory, not a read."""

    # records
    def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]:
        self.calls.append("create_stream")
        if self.deny_create:
            raise Denied(Decision.deny(self.deny_create, Cause.QUOTA_EXCEEDED))
        if self.stream_exists:
            raise AssertionError("the front door created a stream that exists")
        self.stream_exists = True
        return {"metadata": {"namespace": namespace, "name": name, "uid": "u1"}}, True

    def stream(self, namespace: str, name: str) -> Obj | None:
        self.calls.append("read_stream")
        if not self.stream_exists:
            return None
        return {"metadata": {"namespace": namespace, "name": name, "uid": "u0"}}

    def delete_stream(self, stream: Obj) -> None:
        self.calls.append("delete_stream")

    def save_image(self, image: Obj) -> bool:
        self.calls.append("save_image")
        self.images.append(image)
        return image["metadata"]["name"] not in self.existing_images

    def tag(
        self, stream: Obj, tag: str, digest: str, reference: str, *, remembered: bool = False
    ) -> Obj:
        self.calls.append("tag")
        self.remembered.append(remembered)
        if not self.stream_exists:  # as ``ImageRecords.tag`` finds it on its 404 or read
            raise StreamGone("the ImageStream was deleted during the push")
        if self.deny_tag:
            raise Denied(Decision.deny(self.deny_tag, Cause.IMAGE_TAGS_LIMIT))
        if self.fail_tag:
            raise RecordFailed("HTTP 500")
        self.tags.append((tag, digest, reference))
        self.version += 1
        return {**stream, "metadata": {**stream["metadata"], "resourceVersion": str(self.version)}}

    # registry
    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Any = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        if method == "HEAD":
            return self.head(path_and_query)
        self.calls.append(f"registry {method} {path_and_query}")
        return UpstreamResponse(self.registry_status, [], iter([b""]), 0)

    def head(self, path: str) -> UpstreamResponse:
        """A blob HEAD: its size in Content-Length, as distribution answers it."""
        self.heads.append(path)
        blob = path.rsplit("/", 1)[1]
        size = self.held[blob] if blob in self.held else HELD.get(blob)
        if size is None:
            return UpstreamResponse(404, [], iter([]), None)
        return UpstreamResponse(200, [("Content-Length", str(size))], iter([]), size)

    def read(self, path: str, headers: Mapping[str, str], limit: int) -> tuple[int, bytes]:
        reference = path.rsplit("/", 1)[1]
        found = self.manifests.get(reference)
        return (200, found) if found is not None else (404, b"")


def push(
    body: bytes, reference: str = "v1", content_type: str | None = OCI_MANIFEST
) -> ManifestPut:
    return ManifestPut("team-a", "app", reference, body, content_type)


@pytest.fixture
def journal() -> Iterator[Journal]:
    yield Journal()


def test_an_allowed_tag_push_charges_saves_puts_then_tags_in_that_order(journal: Journal) -> None:
    judge = Judge(calls=journal.calls)
    body = image_manifest(100, 100, 50)
    answer = ManifestPuts(judge, journal, journal, HOST).put(push(body))
    assert answer.status == 201
    assert journal.calls == [
        "read_stream",
        "create_stream",
        "charge_storage",
        f"registry PUT /v2/team-a/app/manifests/{digest(body)}",
        "save_image",
        "tag",
        "registry PUT /v2/team-a/app/manifests/v1",
    ]
    (request,) = judge.seen
    assert (request.namespace, request.repository, request.tag) == ("team-a", "app", "v1")
    assert request.digest == digest(body)
    assert request.manifest.size == 10 + 100 + 100 + 50
    assert journal.tags == [("v1", digest(body), f"{HOST}/team-a/app@{digest(body)}")]
    assert journal.images[0]["dockerImageMetadata"] == {"size": request.manifest.size}


def test_a_denied_push_writes_nothing(journal: Journal) -> None:
    judge = Judge("requested usage of storage exceeds the maximum limit")
    with pytest.raises(PushDenied) as denied:
        ManifestPuts(judge, journal, journal, HOST).put(push(image_manifest(10)))
    assert denied.value.decision.cause is Cause.IMAGE_STORAGE_LIMIT
    assert not denied.value.decision.retryable
    assert journal.calls == []


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("caches not synced: imagestreams; retry", Cause.NOT_READY),
        ("status unknown for quota: q, resources: alauda.io/imagestreams", Cause.QUOTA_UNKNOWN),
    ],
)
def test_a_retryable_judgement_is_a_retryable_denial(
    journal: Journal, message: str, cause: Cause
) -> None:
    with pytest.raises(PushDenied) as denied:
        ManifestPuts(Judge(message, cause), journal, journal, HOST).put(push(image_manifest(10)))
    assert denied.value.decision.retryable
    assert journal.calls == []


def test_quota_taken_by_a_racing_push_denies_at_the_stream_create(journal: Journal) -> None:
    journal.deny_create = "exceeded quota: q, requested: alauda.io/imagestreams=1, ..."
    with pytest.raises(PushDenied) as denied:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert denied.value.decision.cause is Cause.QUOTA_EXCEEDED
    assert journal.calls == ["read_stream", "create_stream", "read_stream"]  # no registry PUT


def test_a_push_to_an_existing_repository_creates_nothing_even_with_quota_full(
    journal: Journal,
) -> None:
    """Admission judges a create before the API server finds the name taken: creating an
    existing stream under a full quota would be denied as a new repository."""
    journal.stream_exists = True
    journal.deny_create = "exceeded quota: q"
    ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert "create_stream" not in journal.calls and "tag" in journal.calls


def test_a_create_denied_because_a_racer_created_the_stream_uses_the_racers(
    journal: Journal,
) -> None:
    class Racer(Journal):
        def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]:
            self.calls.append("create_stream")
            self.stream_exists = True  # the other push's create, charged, just landed
            raise Denied(Decision.deny("exceeded quota: q", Cause.QUOTA_EXCEEDED))

    racer = Racer()
    ManifestPuts(Judge(), racer, racer, HOST).put(push(image_manifest(10)))
    assert "tag" in racer.calls and "delete_stream" not in racer.calls


STORAGE_FULL = (
    "exceeded quota: space, requested: alauda.io/image-storage=600Ki, "
    "used: alauda.io/image-storage=512Ki, limited: alauda.io/image-storage=1Mi"
)


def test_storage_taken_by_a_racing_push_denies_before_the_registry_and_undoes_the_stream(
    journal: Journal,
) -> None:
    judge = Judge(deny_storage=STORAGE_FULL, calls=journal.calls)
    with pytest.raises(PushDenied) as denied:
        ManifestPuts(judge, journal, journal, HOST).put(push(image_manifest(10)))
    assert denied.value.decision.message == STORAGE_FULL
    assert not denied.value.decision.retryable
    assert journal.calls == ["read_stream", "create_stream", "charge_storage", "delete_stream"]


def test_a_storage_charge_the_api_server_fails_is_retryable_and_undoes_the_stream(
    journal: Journal,
) -> None:
    judge = Judge(fail_storage=429, calls=journal.calls)
    with pytest.raises(RecordFailed, match="image-storage: HTTP 429"):
        ManifestPuts(judge, journal, journal, HOST).put(push(image_manifest(10)))
    assert journal.calls == ["read_stream", "create_stream", "charge_storage", "delete_stream"]


def test_an_image_that_existed_is_saved_again_once_its_tag_is_recorded(journal: Journal) -> None:
    # A delete or a prune may have deleted the existing Image between its save and the
    # tag's record; saved again, the tag never names an Image that is gone.
    body = image_manifest(10)
    journal.existing_images = {digest(body).replace(":", "-", 1)}
    ManifestPuts(Judge(), journal, journal, HOST).put(push(body))
    tagged = journal.calls.index("tag")
    assert journal.calls[tagged - 1] == "save_image"
    assert journal.calls[tagged + 1] == "save_image"


def test_a_new_image_is_saved_once(journal: Journal) -> None:
    ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert journal.calls.count("save_image") == 1


def test_a_storage_denial_keeps_a_stream_that_existed(journal: Journal) -> None:
    journal.stream_exists = True
    with pytest.raises(PushDenied):
        ManifestPuts(Judge(deny_storage=STORAGE_FULL), journal, journal, HOST).put(
            push(image_manifest(10))
        )
    assert journal.calls == ["read_stream"]


def test_the_storage_charge_is_for_the_push_that_was_judged(journal: Journal) -> None:
    judge = Judge()
    ManifestPuts(judge, journal, journal, HOST).put(push(image_manifest(100, 50)))
    assert judge.charged == judge.seen
    assert sum(blob.size for blob in judge.charged[0].blobs()) == 10 + 100 + 50


def test_a_manifest_the_registry_refuses_undoes_the_new_stream(journal: Journal) -> None:
    journal.registry_status = 400
    answer = ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert answer.status == 400
    assert journal.calls[-1] == "delete_stream"
    assert "tag" not in journal.calls and "save_image" not in journal.calls  # no stray Image


def test_a_refused_manifest_keeps_a_stream_that_existed(journal: Journal) -> None:
    journal.stream_exists = True
    journal.registry_status = 400
    ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert "delete_stream" not in journal.calls


def test_a_tag_the_webhook_refuses_after_a_race_never_moves_in_the_registry(
    journal: Journal,
) -> None:
    journal.deny_tag = "requested usage of alauda.io/image-tags exceeds the maximum limit"
    with pytest.raises(PushDenied) as denied:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert denied.value.decision.cause is Cause.IMAGE_TAGS_LIMIT
    assert "registry PUT /v2/team-a/app/manifests/v1" not in journal.calls


def test_a_failed_tag_write_is_left_to_the_clients_retry(journal: Journal) -> None:
    journal.fail_tag = True
    with pytest.raises(RecordFailed):
        ManifestPuts(Judge(), journal, journal, HOST).put(push(image_manifest(10)))
    assert "registry PUT /v2/team-a/app/manifests/v1" not in journal.calls


def test_a_digest_push_is_judged_and_recorded_without_a_tag(journal: Journal) -> None:
    judge = Judge()
    body = image_manifest(10)
    ManifestPuts(judge, journal, journal, HOST).put(push(body, reference=digest(body)))
    assert judge.seen[0].tag is None and judge.seen[0].digest == digest(body)
    assert "tag" not in journal.calls and "save_image" in journal.calls
    assert [c for c in journal.calls if c.startswith("registry")] == [
        f"registry PUT /v2/team-a/app/manifests/{digest(body)}"
    ]


def test_only_a_digest_push_marks_its_image_as_served_by_digest_in_its_repository(
    journal: Journal,
) -> None:
    """Review B1: a tag push's Image is saved before its tag is judged again; unmarked,
    it serves nothing unless that tag is recorded."""
    by_digest, by_tag = image_manifest(11), image_manifest(12)
    puts = ManifestPuts(Judge(), journal, journal, HOST)
    puts.put(push(by_digest, reference=digest(by_digest)))
    journal.deny_tag = "requested usage of alauda.io/image-tags exceeds the maximum limit"
    with pytest.raises(PushDenied):
        puts.put(push(by_tag))
    marked, unmarked = journal.images
    assert marked["metadata"]["annotations"] == {ANNOTATION_PUSHED_BY_DIGEST: "team-a/app"}
    assert "annotations" not in unmarked["metadata"]


def test_each_recorded_image_is_told_to_the_reads_by_digest(journal: Journal) -> None:
    """So a read's miss kept from before the push (a client's HEAD) is forgotten."""
    saved: list[str] = []
    by_digest, by_tag = image_manifest(13), image_manifest(14)
    puts = ManifestPuts(Judge(), journal, journal, HOST, image_saved=saved.append)
    puts.put(push(by_digest, reference=digest(by_digest)))
    puts.put(push(by_tag))
    assert saved == [digest(by_digest), digest(by_tag)]


def test_a_digest_that_is_not_the_bodys_is_refused_before_judging(journal: Journal) -> None:
    judge = Judge()
    with pytest.raises(oci.RegistryError) as err:
        ManifestPuts(judge, journal, journal, HOST).put(
            push(image_manifest(10), reference=digest(b"other"))
        )
    assert err.value.code == oci.DIGEST_INVALID
    assert judge.seen == [] and journal.calls == []


def test_an_index_is_judged_by_its_largest_child(journal: Journal) -> None:
    small, large = image_manifest(10), image_manifest(5000)
    journal.manifests = {digest(small): small, digest(large): large}
    judge = Judge()
    body = index_of(small, large)
    ManifestPuts(judge, journal, journal, HOST).put(push(body, content_type=OCI_INDEX))
    (request,) = judge.seen
    assert request.image_size == 5010 and request.digest == digest(body)
    *children, image = journal.images
    assert [c["dockerImageMetadata"] for c in children] == [{"size": 20}, {"size": 5010}]
    assert image["dockerImageMetadata"] == {"size": 5010}
    assert [m["digest"] for m in image["dockerImageManifests"]] == [digest(small), digest(large)]


def test_an_index_whose_child_the_registry_lacks_is_refused(journal: Journal) -> None:
    child = image_manifest(10)
    with pytest.raises(oci.RegistryError) as err:
        ManifestPuts(Judge(), journal, journal, HOST).put(
            push(index_of(child), content_type=OCI_INDEX)
        )
    assert err.value.code == oci.MANIFEST_BLOB_UNKNOWN
    assert journal.calls == []


def nested(*children: bytes) -> bytes:
    """An index naming ``children``, each an index itself."""
    manifests = [{"mediaType": OCI_INDEX, "digest": digest(c), "size": len(c)} for c in children]
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def test_a_nested_index_is_judged_child_by_child_and_each_manifest_recorded(
    journal: Journal,
) -> None:
    small, large, other = image_manifest(30), image_manifest(4000), image_manifest(500)
    inner, second = index_of(small, large), index_of(other, small)
    outer = nested(inner, second)
    journal.manifests = {digest(m): m for m in (small, large, other, inner, second)}
    judge = Judge()
    ManifestPuts(judge, journal, journal, HOST).put(push(outer, content_type=OCI_INDEX))
    (request,) = judge.seen
    assert request.image_size == 4010  # the largest image at any depth
    assert {b.digest for b in request.blobs()} >= {
        json.loads(large)["layers"][0]["digest"],
        json.loads(other)["layers"][0]["digest"],
    }
    # One Image per distinct manifest, children before the index naming them.
    recorded = [image["metadata"]["name"] for image in journal.images]
    names = {m: digest(m).replace(":", "-") for m in (small, large, other, inner, second, outer)}
    assert recorded == [
        names[small],
        names[large],
        names[inner],
        names[other],
        names[second],
        names[outer],
    ]
    by_name = {image["metadata"]["name"]: image for image in journal.images}
    assert [m["digest"] for m in by_name[names[inner]]["dockerImageManifests"]] == [
        digest(small),
        digest(large),
    ]
    assert [m["digest"] for m in by_name[names[outer]]["dockerImageManifests"]] == [
        digest(inner),
        digest(second),
    ]
    assert "dockerImageLayers" in by_name[names[large]]
    assert all(ANNOTATION_PUSHED_BY_DIGEST not in i["metadata"] for i in journal.images)


def test_a_nested_child_over_the_limit_denies_the_index(journal: Journal) -> None:
    small, large = image_manifest(30), image_manifest(9000)
    inner = index_of(small, large)
    journal.manifests = {digest(m): m for m in (small, large, inner)}
    with pytest.raises(PushDenied):
        ManifestPuts(Judge(deny="too large"), journal, journal, HOST).put(
            push(nested(inner), content_type=OCI_INDEX)
        )
    assert journal.images == []


def test_indexes_deeper_than_the_bound_are_refused_naming_where(journal: Journal) -> None:
    level = index_of(image_manifest(1))
    journal.manifests = {digest(level): level, digest(image_manifest(1)): image_manifest(1)}
    for _ in range(MAX_INDEX_DEPTH - 1):
        level = nested(level)
        journal.manifests[digest(level)] = level
    # MAX_INDEX_DEPTH levels: accepted.
    ManifestPuts(Judge(), journal, journal, HOST).put(push(level, content_type=OCI_INDEX))
    deeper = nested(level)
    with pytest.raises(oci.RegistryError) as err:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(deeper, content_type=OCI_INDEX))
    assert err.value.code == oci.MANIFEST_INVALID
    path = ".".join(["manifests[0]"] * MAX_INDEX_DEPTH)
    assert err.value.message == (
        f"{path} is an image index at level {MAX_INDEX_DEPTH + 1}: indexes may nest at most"
        f" {MAX_INDEX_DEPTH} levels deep here"
    )


def test_a_push_reads_at_most_the_bound_of_manifests_at_every_depth(journal: Journal) -> None:
    images = [image_manifest(1, config_size=n + 1) for n in range(MAX_PUSH_MANIFESTS)]
    half = MAX_PUSH_MANIFESTS // 2
    first, second = index_of(*images[:half]), index_of(*images[half:])
    journal.manifests = {digest(m): m for m in (*images, first, second)}
    with pytest.raises(oci.RegistryError) as err:
        ManifestPuts(Judge(), journal, journal, HOST).put(
            push(nested(first, second), content_type=OCI_INDEX)
        )
    assert err.value.code == oci.MANIFEST_INVALID
    assert err.value.message.startswith(
        f"an image index and the indexes it names may name at most {MAX_PUSH_MANIFESTS}"
        " distinct manifests here; manifests[1].manifests["
    )
    assert journal.images == []


def test_an_index_naming_too_many_manifests_is_refused_unread(journal: Journal) -> None:
    child = image_manifest(10)
    journal.manifests = {digest(child): child}
    body = index_of(*[child] * (MAX_INDEX_CHILDREN + 1))
    with pytest.raises(oci.RegistryError) as err:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(body, content_type=OCI_INDEX))
    assert err.value.code == oci.MANIFEST_INVALID and journal.calls == []
    assert err.value.message == (
        f"an image index may name at most {MAX_INDEX_CHILDREN} manifests here; "
        f"this one names {MAX_INDEX_CHILDREN + 1}"
    )


def test_an_index_naming_exactly_the_most_manifests_is_accepted() -> None:
    ledger = Ledger()
    child = image_manifest(10)
    ledger.manifests = {digest(child): child}
    ManifestPuts(Judge(), ledger, ledger, HOST).put(
        push(index_of(*[child] * MAX_INDEX_CHILDREN), content_type=OCI_INDEX)
    )
    assert len(ledger.images) == 2  # the child's Image, then the index's


# --- what each step is given ------------------------------------------------------------


class Ledger(Journal):
    """A journal that also keeps every argument each step was given."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[tuple[str, str]] = []
        self.deleted: list[Obj] = []
        self.tagged_streams: list[Obj] = []
        self.sent: list[tuple[Mapping[str, str], Any]] = []
        self.read_headers: list[Mapping[str, str]] = []
        self.read_limits: list[int] = []
        self.child_status: int | None = None
        self.deny_image = ""

    def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]:
        self.names.append((namespace, name))
        return super().create_stream(namespace, name)

    def stream(self, namespace: str, name: str) -> Obj | None:
        self.names.append((namespace, name))
        return super().stream(namespace, name)

    def delete_stream(self, stream: Obj) -> None:
        self.deleted.append(stream)
        super().delete_stream(stream)

    def save_image(self, image: Obj) -> bool:
        if self.deny_image:
            raise Denied(Decision.deny(self.deny_image, Cause.IMAGE_STORAGE_LIMIT))
        return super().save_image(image)

    def tag(
        self, stream: Obj, tag: str, digest: str, reference: str, *, remembered: bool = False
    ) -> Obj:
        self.tagged_streams.append(stream)
        return super().tag(stream, tag, digest, reference, remembered=remembered)

    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: Any = None,
        length: int | None = None,
    ) -> UpstreamResponse:
        if method != "HEAD":
            self.sent.append((dict(headers), body))
        return super().request(method, path_and_query, headers, body, length)

    def read(self, path: str, headers: Mapping[str, str], limit: int) -> tuple[int, bytes]:
        self.read_headers.append(dict(headers))
        self.read_limits.append(limit)
        if self.child_status is not None:
            return self.child_status, b""
        return super().read(path, headers, limit)


def test_each_step_is_given_the_repository_and_the_stream_it_found() -> None:
    ledger = Ledger()
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(10)))
    assert set(ledger.names) == {("team-a", "app")}
    assert ledger.tagged_streams == [
        {"metadata": {"namespace": "team-a", "name": "app", "uid": "u1"}}
    ]


def test_the_registry_gets_the_exact_body_and_its_content_type() -> None:
    ledger = Ledger()
    body = image_manifest(10)
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(body, content_type=None))
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(body, content_type=OCI_MANIFEST))
    assert ledger.sent == [({"Content-Type": OCI_MANIFEST}, body)] * 4  # by digest, by tag


def test_a_content_type_naming_the_type_spares_the_body_its_media_type() -> None:
    ledger = Ledger()
    document = json.loads(image_manifest(10))
    del document["mediaType"]
    answer = ManifestPuts(Judge(), ledger, ledger, HOST).put(push(json.dumps(document).encode()))
    assert answer.status == 201


def test_the_judge_sees_the_push_with_its_media_type() -> None:
    judge, ledger = Judge(), Ledger()
    ManifestPuts(judge, ledger, ledger, HOST).put(push(image_manifest(10)))
    [seen] = judge.seen
    assert (type(seen), seen.media_type) == (Push, OCI_MANIFEST)


@pytest.mark.parametrize("status", [300, 404])
def test_any_non_2xx_from_the_registry_undoes_the_new_stream(status: int) -> None:
    ledger = Ledger()
    ledger.registry_status = status
    answer = ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(10)))
    assert answer.status == status
    assert ledger.deleted == [{"metadata": {"namespace": "team-a", "name": "app", "uid": "u1"}}]
    assert "tag" not in ledger.calls


def test_a_racers_stream_is_never_deleted_when_the_registry_refuses() -> None:
    class Racer(Ledger):
        def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]:
            self.stream_exists = True
            raise Denied(Decision.deny("exceeded quota: q", Cause.QUOTA_EXCEEDED))

    racer = Racer()
    racer.registry_status = 400
    ManifestPuts(Judge(), racer, racer, HOST).put(push(image_manifest(10)))
    assert racer.deleted == []
    assert racer.names == [("team-a", "app")] * 2  # read before the create, and after it


def test_an_image_the_webhook_refuses_is_a_denial_with_its_message() -> None:
    ledger = Ledger()
    ledger.deny_image = "requested usage of storage exceeds"
    with pytest.raises(PushDenied) as raised:
        ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(10)))
    assert (
        raised.value.decision.message == str(raised.value) == "requested usage of storage exceeds"
    )


def test_an_index_is_recorded_with_its_reference_type_and_children() -> None:
    ledger = Ledger()
    child = image_manifest(100, config_size=5)
    ledger.manifests[digest(child)] = child
    platform = {"architecture": "arm64", "os": "linux"}
    entry = {"mediaType": OCI_MANIFEST, "digest": digest(child), "size": len(child)}
    document = {"schemaVersion": 2, "manifests": [{**entry, "platform": platform}]}
    body = json.dumps(document).encode()
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(body, content_type=OCI_INDEX))
    child_image, image = ledger.images
    assert child_image["dockerImageReference"] == f"{HOST}/team-a/app@{digest(child)}"
    assert child_image["dockerImageConfig"]["size"] == 5
    assert image["dockerImageReference"] == f"{HOST}/team-a/app@{digest(body)}"
    assert image["dockerImageManifestMediaType"] == OCI_INDEX
    assert image["dockerImageMetadata"] == {"size": 105}
    assert image["dockerImageManifests"] == [
        {
            "digest": digest(child),
            "mediaType": OCI_MANIFEST,
            "manifestSize": len(child),
            "platform": platform,
        }
    ]
    assert ledger.read_headers == [{"Accept": OCI_MANIFEST}]
    assert ledger.read_limits == [4 * 1024 * 1024]  # a child is a manifest: same cap


def test_a_child_without_its_media_type_is_read_as_the_index_names_it() -> None:
    ledger = Ledger()
    document = json.loads(image_manifest(100))
    del document["mediaType"]
    child = json.dumps(document).encode()
    ledger.manifests[digest(child)] = child
    answer = ManifestPuts(Judge(), ledger, ledger, HOST).put(
        push(index_of(child), content_type=OCI_INDEX)
    )
    assert answer.status == 201


def test_an_empty_index_is_judged_as_an_image_of_no_size() -> None:
    judge, ledger = Judge(), Ledger()
    ManifestPuts(judge, ledger, ledger, HOST).put(push(index_of(), content_type=OCI_INDEX))
    assert judge.seen[0].image_size == 0


def test_a_child_the_registry_lacks_names_its_digest() -> None:
    ledger = Ledger()
    child = image_manifest(1)
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(Judge(), ledger, ledger, HOST).put(
            push(index_of(child), content_type=OCI_INDEX)
        )
    assert raised.value.detail == {"digest": digest(child)}


def test_a_child_the_registry_cannot_read_fails_retryably_naming_it() -> None:
    ledger = Ledger()
    ledger.child_status = 500
    with pytest.raises(RecordFailed, match=r"^reading manifests\[0\]: HTTP 500$"):
        ManifestPuts(Judge(), ledger, ledger, HOST).put(
            push(index_of(image_manifest(1)), content_type=OCI_INDEX)
        )


def test_an_image_is_recorded_with_its_reference_and_media_type() -> None:
    ledger = Ledger()
    body = image_manifest(10)
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(body))
    [image] = ledger.images
    assert image["dockerImageReference"] == f"{HOST}/team-a/app@{digest(body)}"
    assert image["dockerImageManifestMediaType"] == OCI_MANIFEST


def test_the_registry_gets_the_bodys_media_type_not_a_generic_one() -> None:
    ledger = Ledger()
    ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(1), content_type=None))
    assert [headers["Content-Type"] for headers, _ in ledger.sent] == [OCI_MANIFEST] * 2


def test_an_index_naming_one_child_many_times_reads_it_once() -> None:
    ledger = Ledger()
    child = image_manifest(10)
    ledger.manifests = {digest(child): child}
    ManifestPuts(Judge(), ledger, ledger, HOST).put(
        push(index_of(*[child] * 50), content_type=OCI_INDEX)
    )
    assert len(ledger.read_limits) == 1


# --- declared sizes against what the registry holds -------------------------------------

MIB = 1024 * 1024


def layer_of(body: bytes, position: int = 0) -> str:
    layer: str = json.loads(body)["layers"][position]["digest"]
    return layer


def test_a_layer_declared_smaller_than_the_registry_holds_is_refused_before_any_write(
    journal: Journal,
) -> None:
    judge = Judge()
    body = image_manifest(1000)
    journal.held[layer_of(body)] = 3 * MIB
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(judge, journal, journal, HOST).put(push(body))
    assert (raised.value.status, raised.value.code) == (400, oci.MANIFEST_INVALID)
    assert raised.value.message == (
        f"layers[0].size is 1000, but the registry holds {3 * MIB} bytes for {layer_of(body)}"
    )
    assert judge.seen == [] and journal.calls == []


def test_a_config_declared_with_another_size_is_refused_naming_the_config(
    journal: Journal,
) -> None:
    body = image_manifest(10, config_size=7)
    config = json.loads(body)["config"]["digest"]
    journal.held[config] = 70
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(body))
    assert raised.value.message == f"config.size is 7, but the registry holds 70 bytes for {config}"
    assert journal.calls == []


def test_a_blob_the_registry_lacks_is_manifest_blob_unknown_before_any_write(
    journal: Journal,
) -> None:
    body = image_manifest(10, 20)
    journal.held[layer_of(body, 1)] = None
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(Judge(), journal, journal, HOST).put(push(body))
    assert raised.value.code == oci.MANIFEST_BLOB_UNKNOWN
    assert raised.value.detail == {"digest": layer_of(body, 1)}
    assert journal.calls == []


def test_each_blob_is_asked_of_the_registry_in_the_pushed_repository(journal: Journal) -> None:
    body = image_manifest(10, 20)
    ManifestPuts(Judge(), journal, journal, HOST).put(push(body))
    config = json.loads(body)["config"]["digest"]
    assert journal.heads == [
        f"/v2/team-a/app/blobs/{blob}" for blob in (config, layer_of(body), layer_of(body, 1))
    ]


def test_a_blob_size_is_asked_once_per_digest(journal: Journal) -> None:
    """A digest names its content: its size never changes, so later pushes reuse it."""
    puts = ManifestPuts(Judge(), journal, journal, HOST)
    puts.put(push(image_manifest(10, 20)))
    asked = len(journal.heads)
    puts.put(push(image_manifest(10, 20), reference="v2"))
    assert asked == 3 and len(journal.heads) == asked


def test_a_registry_that_cannot_say_a_blobs_size_fails_retryably_before_any_write() -> None:
    class Failing(Journal):
        def head(self, path: str) -> UpstreamResponse:
            return UpstreamResponse(500, [], iter([]), None)

    failing = Failing()
    with pytest.raises(RecordFailed, match=r"HEAD of blob sha256:[0-9a-f]{64}: HTTP 500$"):
        ManifestPuts(Judge(), failing, failing, HOST).put(push(image_manifest(10)))
    assert failing.calls == []


def test_an_index_child_of_another_length_than_declared_is_refused(journal: Journal) -> None:
    child = image_manifest(10)
    journal.manifests = {digest(child): child}
    document = json.loads(index_of(child))
    document["manifests"][0]["size"] = len(child) - 1
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(Judge(), journal, journal, HOST).put(
            push(json.dumps(document).encode(), content_type=OCI_INDEX)
        )
    assert raised.value.code == oci.MANIFEST_INVALID
    assert raised.value.message == (
        f"manifests[0].size is {len(child) - 1}, but the registry holds {len(child)} bytes"
        f" for {digest(child)}"
    )
    assert journal.calls == []


def test_an_index_child_naming_a_blob_of_another_size_is_refused_naming_the_child(
    journal: Journal,
) -> None:
    small, lying = image_manifest(10), image_manifest(1000)
    journal.manifests = {digest(small): small, digest(lying): lying}
    journal.held[layer_of(lying)] = 3 * MIB
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(Judge(), journal, journal, HOST).put(
            push(index_of(small, lying), content_type=OCI_INDEX)
        )
    assert raised.value.message.startswith("manifests[1].layers[0].size is 1000, but")
    assert journal.calls == []


# --- a refused push leaves nothing behind -------------------------------------------------


def test_two_layers_of_the_largest_size_are_refused_before_any_write(journal: Journal) -> None:
    """Each fits an int64, the image's size does not: the Image write would fail after the
    registry stored the manifest and the stream was charged."""
    judge = Judge()
    with pytest.raises(oci.RegistryError) as raised:
        ManifestPuts(judge, journal, journal, HOST).put(push(image_manifest(2**63 - 1, 2**63 - 1)))
    assert raised.value.code == oci.MANIFEST_INVALID
    assert "an int64" in raised.value.message
    assert judge.seen == [] and journal.calls == [] and journal.heads == []


NEW_STREAM = {"metadata": {"namespace": "team-a", "name": "app", "uid": "u1"}}


def test_an_image_refused_after_the_stream_was_created_deletes_the_stream() -> None:
    ledger = Ledger()
    ledger.deny_image = "Image.image.alauda.io is invalid: dockerImageMetadata.size"
    with pytest.raises(PushDenied):
        ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(10)))
    assert ledger.deleted == [NEW_STREAM]
    # A stream that existed before the push is never this push's to delete.
    existing = Ledger()
    existing.stream_exists = True
    existing.deny_image = "refused"
    with pytest.raises(PushDenied):
        ManifestPuts(Judge(), existing, existing, HOST).put(push(image_manifest(10)))
    assert existing.deleted == []


def test_an_image_write_that_fails_after_the_stream_was_created_deletes_the_stream() -> None:
    class Failing(Ledger):
        def save_image(self, image: Obj) -> bool:
            raise RecordFailed("creating the Image: HTTP 500")

    failing = Failing()
    with pytest.raises(RecordFailed):
        ManifestPuts(Judge(), failing, failing, HOST).put(push(image_manifest(10)))
    assert failing.deleted == [NEW_STREAM]


def test_a_tag_refused_after_the_stream_was_created_deletes_the_stream() -> None:
    ledger = Ledger()
    ledger.deny_tag = "requested usage of alauda.io/image-tags exceeds the maximum limit"
    with pytest.raises(PushDenied):
        ManifestPuts(Judge(), ledger, ledger, HOST).put(push(image_manifest(10)))
    assert ledger.deleted == [NEW_STREAM]
    assert "registry PUT /v2/team-a/app/manifests/v1" not in ledger.calls


def test_a_registry_that_fails_after_the_stream_was_created_deletes_the_stream() -> None:
    class Gone(Ledger):
        def request(
            self,
            method: str,
            path_and_query: str,
            headers: Mapping[str, str],
            body: Any = None,
            length: int | None = None,
        ) -> UpstreamResponse:
            if method == "PUT":
                raise ConnectionResetError("the registry went away")
            return super().request(method, path_and_query, headers, body, length)

    gone = Gone()
    with pytest.raises(ConnectionResetError):
        ManifestPuts(Judge(), gone, gone, HOST).put(push(image_manifest(10)))
    assert gone.deleted == [NEW_STREAM]


def test_a_switch_set_since_the_request_began_refuses_before_the_registry_and_undoes_the_stream(
    journal: Journal,
) -> None:
    puts = ManifestPuts(Judge(), journal, journal, HOST, read_only=lambda: True)
    with pytest.raises(oci.RegistryError, match=READ_ONLY_MESSAGE) as refused:
        puts.put(push(image_manifest(10)))
    assert refused.value.code == oci.UNSUPPORTED
    assert not [call for call in journal.calls if call.startswith("registry PUT")]
    assert journal.calls[-1] == "delete_stream"


def remembering(journal: Journal, cached: dict[str, str | None]) -> ManifestPuts:
    """Puts that remember the streams their tag writes return; ``cached``: the watch
    cache's resourceVersion of ``team-a/app`` (key ``version``), None for no stream."""
    memory = StreamMemory(lambda namespace, name: cached["version"])
    return ManifestPuts(Judge(), journal, journal, HOST, streams=memory)


def test_the_next_push_writes_its_tag_from_the_stream_the_last_one_wrote_unread(
    journal: Journal,
) -> None:
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    cached["version"] = "1"  # the cache caught up with that write, or not: "0" is older
    journal.calls.clear()
    puts.put(push(image_manifest(11), "v2"))
    assert "read_stream" not in journal.calls
    assert "create_stream" not in journal.calls
    cached["version"] = "0"
    journal.calls.clear()
    puts.put(push(image_manifest(12), "v3"))
    assert "read_stream" not in journal.calls


def test_a_tag_from_a_remembered_stream_says_so_and_one_from_a_read_does_not(
    journal: Journal,
) -> None:
    """So that ``tag`` confirms a tag the remembered copy already records with a live
    read: no write is sent to be refused as stale."""
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    cached["version"] = "1"
    puts.put(push(image_manifest(10), "v1"))
    assert journal.remembered == [False, True]


def test_a_stream_someone_else_wrote_since_is_read_live(journal: Journal) -> None:
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    cached["version"] = "2"  # newer than our write ("1"): another writer's
    journal.calls.clear()
    puts.put(push(image_manifest(11), "v2"))
    assert journal.calls[0] == "read_stream"


def test_a_stream_the_cache_does_not_hold_is_read_live_and_created_when_gone(
    journal: Journal,
) -> None:
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    journal.stream_exists = False  # deleted: the cache dropped it
    journal.calls.clear()
    puts.put(push(image_manifest(11), "v2"))
    assert journal.calls[:2] == ["read_stream", "create_stream"]


def remembered_then_deleted(journal: Journal) -> ManifestPuts:
    """Puts whose last push to team-a/app remembered its stream, deleted since while the
    watch cache still holds it at that version."""
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    cached["version"] = "1"
    journal.stream_exists = False
    journal.calls.clear()
    return puts


@pytest.mark.parametrize("tag", ["v1", "v2"], ids=["same-tag-and-digest", "another-tag"])
def test_a_remembered_stream_deleted_since_is_created_again_as_a_fresh_push_would(
    journal: Journal, tag: str
) -> None:
    """Before streams were remembered, such a push read the stream live, found none and
    created it (charged); it neither fails nor succeeds with no stream."""
    puts = remembered_then_deleted(journal)
    puts.put(push(image_manifest(10), tag))
    assert journal.calls[journal.calls.index("tag") :] == [
        "tag",  # the remembered stream: gone
        "read_stream",
        "create_stream",
        "tag",
        f"registry PUT /v2/team-a/app/manifests/{tag}",
    ]
    assert journal.remembered[-2:] == [True, False]
    assert journal.tags[-1][0] == tag


def test_a_remembered_stream_deleted_since_whose_create_is_denied_denies_the_push(
    journal: Journal,
) -> None:
    puts = remembered_then_deleted(journal)
    journal.deny_create = "exceeded quota: q"
    with pytest.raises(PushDenied, match="exceeded quota: q"):
        puts.put(push(image_manifest(10), "v2"))
    assert "registry PUT /v2/team-a/app/manifests/v2" not in journal.calls


def test_a_stream_created_again_whose_tag_is_refused_is_deleted_again(journal: Journal) -> None:
    puts = remembered_then_deleted(journal)
    journal.deny_tag = "too many tags"
    with pytest.raises(PushDenied, match="too many tags"):
        puts.put(push(image_manifest(10), "v2"))
    assert journal.calls[-3:] == ["create_stream", "tag", "delete_stream"]


def test_a_stream_read_live_and_deleted_before_its_tag_is_left_to_the_clients_retry() -> None:
    """Only a remembered stream is found again: one this push read live went during the
    push, as before streams were remembered."""

    class Deleting(Journal):
        def save_image(self, image: Obj) -> bool:
            self.stream_exists = False
            return super().save_image(image)

    deleting = Deleting()
    deleting.stream_exists = True
    with pytest.raises(RecordFailed, match="deleted during the push"):
        ManifestPuts(Judge(), deleting, deleting, HOST).put(push(image_manifest(10), "v2"))
    assert "create_stream" not in deleting.calls


def test_a_failed_tag_write_forgets_the_stream(journal: Journal) -> None:
    cached: dict[str, str | None] = {"version": None}
    puts = remembering(journal, cached)
    puts.put(push(image_manifest(10), "v1"))
    cached["version"] = "1"
    journal.fail_tag = True
    with pytest.raises(RecordFailed):
        puts.put(push(image_manifest(11), "v2"))
    journal.fail_tag = False
    journal.calls.clear()
    puts.put(push(image_manifest(11), "v2"))
    assert journal.calls[0] == "read_stream"


def test_an_image_the_cache_holds_is_saved_once_after_its_tag_not_before(
    journal: Journal,
) -> None:
    body = image_manifest(10)
    journal.existing_images = {digest(body).replace(":", "-", 1)}
    cached = {digest(body)}
    puts = ManifestPuts(Judge(), journal, journal, HOST, image_cached=cached.__contains__)
    puts.put(push(body))
    tagged = journal.calls.index("tag")
    assert journal.calls.count("save_image") == 1
    assert journal.calls[tagged + 1] == "save_image"


def test_an_image_the_cache_lacks_is_saved_before_its_tag(journal: Journal) -> None:
    puts = ManifestPuts(Judge(), journal, journal, HOST, image_cached=lambda digest: False)
    puts.put(push(image_manifest(10)))
    assert journal.calls.index("save_image") < journal.calls.index("tag")


def test_a_digest_push_saves_its_image_even_when_the_cache_holds_it(journal: Journal) -> None:
    body = image_manifest(10)
    puts = ManifestPuts(Judge(), journal, journal, HOST, image_cached=lambda digest: True)
    puts.put(push(body, digest(body)))
    assert journal.calls.count("save_image") == 1
