"""The push value's views over an index of any depth: its images, its size, its blobs."""

from __future__ import annotations

from quota.measure import Descriptor, Manifest
from quota.push import IndexChild, Push

AMD64 = Manifest(
    Descriptor("sha256:c1", 10), (Descriptor("sha256:l1", 100), Descriptor("sha256:l2", 5))
)
ARM64 = Manifest(Descriptor("sha256:c2", 7), (Descriptor("sha256:l1", 100),))


def _child(digest: str, manifest: Manifest) -> IndexChild:
    return IndexChild(digest, "application/vnd.oci.image.manifest.v1+json", 1, None, manifest)


def _index(*children: IndexChild) -> Push:
    return Push("team-a", "app", "v1", "sha256:top", "index", Manifest(None), children)


def test_an_image_manifest_is_its_own_only_image() -> None:
    push = Push("team-a", "app", "v1", "sha256:top", "manifest", AMD64)

    assert push.images() == (AMD64,)
    assert push.image_size == 115


def test_a_nested_index_contributes_its_own_children() -> None:
    nested = IndexChild("sha256:i", "index", 1, None, Manifest(None), (_child("sha256:b", ARM64),))

    push = _index(_child("sha256:a", AMD64), nested)

    assert push.images() == (AMD64, ARM64)
    assert push.image_size == 115


def test_blobs_count_each_digest_once_across_images() -> None:
    push = _index(_child("sha256:a", AMD64), _child("sha256:b", ARM64))

    assert sorted((blob.digest, blob.size) for blob in push.blobs()) == [
        ("sha256:c1", 10),
        ("sha256:c2", 7),
        ("sha256:l1", 100),
        ("sha256:l2", 5),
    ]


def test_a_blob_declared_twice_counts_at_its_largest_size() -> None:
    smaller = Manifest(None, (Descriptor("sha256:l1", 1),))

    push = _index(_child("sha256:a", AMD64), _child("sha256:b", smaller))

    assert {blob.digest: blob.size for blob in push.blobs()}["sha256:l1"] == 100


def test_an_empty_index_has_no_images_and_no_size() -> None:
    push = _index()

    assert push.images() == ()
    assert push.image_size == 0
    assert push.blobs() == ()
