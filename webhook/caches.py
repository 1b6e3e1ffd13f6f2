"""``serve``'s watch caches: the push rules' (``serving.caches``) and what admission reads
besides: namespaces (the opt-out label), Images (sizes) and the metadata of pull Secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors
from kube.informer import Informer
from kube.metadata import metadata_list_func
from kube.transforms import Keep, identity, projection
from quota.limitchecks import ImageSize, Unsized
from quota.measure import recorded_image_size
from quota.objects import Obj, object_name
from quota.pullsecrets.names import (
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    LABEL_MANAGED_BY,
    SECRET_TYPE_DOCKERCONFIGJSON,
)
from serving.caches import PushCaches, image_keys, project_image_blobs
from serving.compactimages import SIZE_KEY, compact_image

PULL_SECRET_TYPES = (SECRET_TYPE_DOCKERCONFIGJSON, "kubernetes.io/dockercfg")
"""The two Secret types the kubelet takes image pull credentials from."""


NAMESPACE_KEEP: Final[Mapping[str, Keep]] = {"metadata": {"labels": True}}
"""The mutating webhook reads a namespace's labels (the opt-out)."""
PULL_SECRET_KEEP: Final[Mapping[str, Keep]] = {
    "metadata": {
        "labels": {LABEL_MANAGED_BY: True},
        "annotations": {ANNOTATION_SERVICE_ACCOUNT_NAME: True},
        "ownerReferences": [{"apiVersion": True, "kind": True, "name": True, "uid": True}],
    }
}
"""``quota.pullsecrets.desired_secret.may_reference``: the managed markers and the owner."""


IMAGE_SIZE: Final = SIZE_KEY
"""Key of a cached Image's size in bytes (None: it records none)."""


def cached_image(image: Obj) -> Obj:
    """An Image as ``serve`` keeps it: what finds it (name, ``dockerImageReference``), its
    size as ``quota.measure.recorded_image_size`` reads it, worked out once here, and what
    the storage quota reads (``serving.caches``: its blobs' digests and sizes, an index's
    children, the repository a push by digest recorded it for).

    A registry's Image carries its config, history and layer media types (kilobytes each,
    20,000 of them in a large cluster); the rules need one number and the blob list,
    packed (``serving.compactimages``) unless the packed form would not read the same."""
    projected = {**identity(image), **project_image_blobs(image)}
    return compact_image(projected, size=recorded_image_size(image))


def image_digests(image: dict[str, Any]) -> list[str]:
    """Digests an Image object describes: its name, and the digest of its reference."""
    digests = []
    name = object_name(image)
    if ":" in name:
        digests.append(name)
    reference = image.get("dockerImageReference")
    if isinstance(reference, str) and "@" in reference:
        digests.append(reference.rsplit("@", 1)[1])
    return digests


class NotSynced(Exception):
    """A cache asked before its first list: absence there means nothing yet."""


class WebhookCaches(PushCaches):
    """The push rules' caches, plus what admission reads: namespaces (the opt-out label),
    Images (sizes) and the metadata of pull Secrets."""

    def __init__(self, api: client.ApiClient) -> None:
        super().__init__(api)
        self.namespaces = Informer(
            "namespaces", self._core.list_namespace, transform=projection(NAMESPACE_KEEP)
        )
        # Metadata only (never Secret data) of the Secrets the kubelet pulls with: the
        # mutating webhook must know whether the managed name is someone else's.
        self.pull_secrets = [
            Informer(
                f"secrets({secret_type})",
                metadata_list_func(api, "/api/v1/secrets"),
                field_selector=f"type={secret_type}",
                transform=projection(PULL_SECRET_KEEP),
            )
            for secret_type in PULL_SECRET_TYPES
        ]

    def cache_image(self, image: Obj) -> Obj:
        return cached_image(image)

    def image_keys(self, image: Obj) -> list[str]:
        return sorted({*image_keys(image), *image_digests(image)})

    @property
    def informers(self) -> list[Informer]:
        return [
            self.namespaces,
            self.limit_ranges,
            self.resource_quotas,
            self.images,
            self.imagestreams,
            *self.pull_secrets,
        ]

    def namespace_labels(self, name: str) -> Mapping[str, str] | None:
        """From the cache; before it has synced (or for a namespace it has not seen yet),
        one direct read, so a fresh worker never guesses."""
        namespace = self.namespaces.get(name)
        if namespace is None:
            try:
                response = self._core.read_namespace(
                    name, _preload_content=False, _request_timeout=3
                )
                namespace = json.loads(response.data)
            except ApiException as err:
                if apierrors.is_not_found(err):
                    return None
                raise
        metadata = namespace.get("metadata") or {}
        labels: Mapping[str, str] = metadata.get("labels") or {}
        return labels

    def pull_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Metadata of the pull Secret ``namespace/name`` (either type), None when there is
        none; :class:`NotSynced` until the first lists are in, as "none" would be a guess."""
        for informer in self.pull_secrets:
            if not informer.has_synced():
                raise NotSynced(informer.name)
            found = informer.get(f"{namespace}/{name}")
            if found is not None:
                return found
        return None

    def image_size(self, digest: str) -> ImageSize:
        """The size of the image ``digest``, or why it is not known. Its Image is named
        after it (the aggregated Image API), or, as CRD names cannot hold ':', is any Image
        whose dockerImageReference ends in it."""
        found = self.images.get(digest)
        if found is None:
            matches = self.images.by_index(digest)
            found = matches[0] if matches else None
        if found is None:
            return Unsized.NO_IMAGE
        size: int | None = found.get(IMAGE_SIZE)
        return Unsized.NO_SIZE if size is None else size
