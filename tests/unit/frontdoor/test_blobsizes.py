"""Blob sizes as the registry holds them: asked with a HEAD, remembered by digest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from frontdoor import distribution as oci
from frontdoor.blobsizes import MAX_CACHED_SIZES, BlobSizes
from frontdoor.records import RecordFailed
from frontdoor.upstream import UpstreamResponse

A, B, C = ("sha256:" + letter * 64 for letter in "abc")


class Registry:
    def __init__(self, sizes: Mapping[str, int | None], status: int = 200) -> None:
        self.sizes = dict(sizes)
        self.status = status
        self.asked: list[tuple[str, str]] = []
        self.closed = 0

    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse:
        self.asked.append((method, path_and_query))
        assert dict(headers) == {}  # a HEAD passes nothing of the client's on
        blob = path_and_query.rsplit("/", 1)[1]
        size = self.sizes.get(blob)
        registry = self

        class Answer(UpstreamResponse):
            def close(self) -> None:
                registry.closed += 1

        def body() -> Iterator[bytes]:
            yield from ()

        if size is None:
            return Answer(404, [], body(), None)
        return Answer(self.status, [("Content-Length", str(size))], body(), size)


def test_a_size_is_the_heads_length_asked_in_the_repository() -> None:
    registry = Registry({A: 1234})
    assert BlobSizes(registry).size("team-a/app", A) == 1234
    assert registry.asked == [("HEAD", f"/v2/team-a/app/blobs/{A}")]
    assert registry.closed == 1


def test_a_digest_is_asked_once_in_any_repository() -> None:
    registry = Registry({A: 1})
    sizes = BlobSizes(registry)
    assert [sizes.size("t/a", A), sizes.size("t/b", A)] == [1, 1]
    assert len(registry.asked) == 1


def test_the_cache_forgets_the_least_recently_used_digest_past_its_capacity() -> None:
    registry = Registry({A: 1, B: 2, C: 3})
    sizes = BlobSizes(registry, capacity=2)
    for blob in (A, B, A, C):  # A used again after B: B is the one forgotten
        sizes.size("t/a", blob)
    registry.asked.clear()
    assert (sizes.size("t/a", A), sizes.size("t/a", C)) == (1, 3)
    assert registry.asked == []
    assert sizes.size("t/a", B) == 2 and len(registry.asked) == 1
    assert MAX_CACHED_SIZES == 16_384


def test_a_blob_the_registry_lacks_is_none_and_asked_again_later() -> None:
    """It may be uploaded next: only sizes the registry gave are remembered."""
    registry = Registry({})
    sizes = BlobSizes(registry)
    assert sizes.size("t/a", A) is None
    registry.sizes[A] = 5
    assert sizes.size("t/a", A) == 5


@pytest.mark.parametrize("status", [401, 500, 503])
def test_a_registry_that_cannot_say_fails_retryably(status: int) -> None:
    with pytest.raises(RecordFailed, match=rf"HEAD of blob {A}: HTTP {status}$"):
        BlobSizes(Registry({A: 1}, status=status)).size("t/a", A)


def test_a_redirected_head_names_the_registry_setting_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """distribution on S3, GCS or Azure redirects a blob HEAD to the storage (no size)
    unless ``storage.redirect.disable`` is set: every push would fail the same way."""

    class Redirecting(Registry):
        def request(
            self, method: str, path_and_query: str, headers: Mapping[str, str]
        ) -> UpstreamResponse:
            self.asked.append((method, path_and_query))
            location = [("Location", "https://bucket.s3.example/blob?X-Amz-Signature=s")]
            return UpstreamResponse(307, location, iter([]), 0)

    registry = Redirecting({})
    sizes = BlobSizes(registry)
    with caplog.at_level("ERROR", logger="frontdoor.blobsizes"):
        for _ in range(3):
            with pytest.raises(RecordFailed) as failed:
                sizes.size("t/a", A)
            assert str(failed.value) == (
                f"the registry answered the HEAD of blob {A} with a redirect (HTTP 307), which"
                " carries no size: its configuration must set storage.redirect.disable: true"
            )
    assert len(registry.asked) == 3  # never followed, never remembered
    assert caplog.messages == [f"{failed.value} (docs/install.md, The front door)"]


def test_an_answer_without_a_length_fails_retryably() -> None:
    class NoLength(Registry):
        def request(
            self, method: str, path_and_query: str, headers: Mapping[str, str]
        ) -> UpstreamResponse:
            return UpstreamResponse(200, [], iter([]), None)

    with pytest.raises(RecordFailed):
        BlobSizes(NoLength({})).size("t/a", A)


def test_check_passes_a_blob_held_at_its_declared_size() -> None:
    BlobSizes(Registry({A: 10})).check("t/a", "layers[0]", A, 10)


def test_check_names_the_field_and_both_sizes() -> None:
    with pytest.raises(oci.RegistryError) as raised:
        BlobSizes(Registry({A: 3145728})).check("t/a", "layers[2]", A, 1000)
    assert (raised.value.status, raised.value.code) == (400, oci.MANIFEST_INVALID)
    assert raised.value.message == (
        f"layers[2].size is 1000, but the registry holds 3145728 bytes for {A}"
    )


def test_check_of_a_blob_the_registry_lacks_is_manifest_blob_unknown() -> None:
    with pytest.raises(oci.RegistryError) as raised:
        BlobSizes(Registry({})).check("t/a", "config", A, 10)
    assert (raised.value.code, raised.value.detail) == (oci.MANIFEST_BLOB_UNKNOWN, {"digest": A})
