"""One live read of a cluster-scoped Image, for a digest the watch cache does not know yet.

The aggregated Image API names Images after their digest, so a GET by the digest finds
them; standalone CRD names cannot hold ':' (those Images are found through the cache's
``dockerImageReference`` index only). The answer is raw JSON, never decoded into models.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kube.jsonapi import NotAnObject, read_json
from quota.limitchecks import ImageSize, size_of
from quota.names import DIGEST, DNS_SUBDOMAIN, IMAGE_GROUP, IMAGE_VERSION, IMAGES, MAX_NAME_LENGTH
from quota.objects import Obj


class ImageLookupFailed(Exception):
    """The API server could not say whether the Image exists; the message is short and
    names only the kind of failure (an HTTP status or an exception type)."""


class CustomObjects(Protocol):
    """``CustomObjectsApi`` as the lookup uses it."""

    def get_cluster_custom_object(
        self, group: str, version: str, plural: str, name: str, **kwargs: Any
    ) -> Any: ...


def can_name_image(value: str) -> bool:
    """Whether ``value`` can be an Image's name: a digest (the aggregated API) or an object
    name. Anything else (``..``, a ``/``) is never put into a request path."""
    if len(value) > MAX_NAME_LENGTH:
        return False
    return bool(DIGEST.fullmatch(value) or DNS_SUBDOMAIN.fullmatch(value))


class ImageClient:
    """``read_image(digest, timeout=...)``: the Image, None when there is none, or
    ``ImageLookupFailed``; ``image_size``: the same read, as the limit rules take it."""

    def __init__(self, custom: CustomObjects) -> None:
        self._custom = custom

    def read_image(self, digest: str, *, timeout: float) -> Obj | None:
        if not can_name_image(digest):
            return None
        try:
            return read_json(
                self._custom.get_cluster_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                IMAGES,
                digest,
                timeout=timeout,
            )
        except ApiException as err:
            raise ImageLookupFailed(f"HTTP {err.status}") from None
        except NotAnObject as err:
            raise ImageLookupFailed(str(err)) from None
        except (HTTPError, OSError, ValueError) as err:  # timeouts, refused, not JSON
            raise ImageLookupFailed(type(err).__name__) from None

    def image_size(self, digest: str, *, timeout: float) -> ImageSize:
        """The size of the Image read live (measured here, once), or why there is none."""
        return size_of(self.read_image(digest, timeout=timeout))
