"""A delete's metadata, read and written through the API server: the stream's tag or
digest taken out (status, then spec), each candidate Image read live to confirm what
nothing references any more, and those Images deleted.

Every write carries the object's ``resourceVersion`` (a delete its uid too): a push that
wrote the stream or marked the Image since it was read wins, and the delete is decided
again on what it wrote (``Conflict``) or keeps what it would have removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from frontdoor.records import REQUEST_SECONDS, Denied, RecordFailed, refusal
from kube.apierrors import is_conflict, is_forbidden, is_invalid, is_not_found
from kube.jsonapi import JsonApi, NotAnObject
from quota.deletes import StreamChange
from quota.names import IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj, metadata
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST, image_object_name

log = logging.getLogger(__name__)

LIST_PAGE_SIZE: Final = 500
"""Objects per page of a live list: client-go's reflector pages by 500 (``pager.New``'s
default page size), so one page of Images stays a few hundred KiB."""
LIST_SECONDS: Final = 30.0
"""One page of a live list; more than one object's read (``REQUEST_SECONDS``) allows."""


class Conflict(Exception):
    """The stream changed since it was read: read it again and decide again."""


class DeleteObjects(Protocol):
    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def replace_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any: ...
    def delete_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def patch_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...


def _failed(what: str, err: BaseException) -> RecordFailed:
    detail = f"HTTP {err.status}" if isinstance(err, ApiException) else type(err).__name__
    return RecordFailed(f"{what}: {detail}")


class DeleteRecords(JsonApi):
    def __init__(self, custom: DeleteObjects) -> None:
        super().__init__(timeout=REQUEST_SECONDS)
        self._custom = custom

    def write(self, stream: Obj, change: StreamChange) -> str:
        """Write ``change`` to ``stream``: its status first (what reads serve, so the
        front door stops serving at once), then its spec; the resourceVersion the last
        write was answered with. ``Conflict`` when the stream changed since it was read;
        ``Denied`` when the API server refuses."""
        meta = metadata(stream)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        current = stream
        if change.status is not None:
            current = self._replace(
                self._custom.replace_namespaced_custom_object_status,
                namespace,
                name,
                {**current, "status": change.status},
            )
        if change.spec is not None:
            current = self._replace(
                self._custom.replace_namespaced_custom_object,
                namespace,
                name,
                {**current, "spec": change.spec},
            )
        return str(metadata(current).get("resourceVersion") or "")

    def _replace(self, func: Callable[..., Any], namespace: str, name: str, body: Obj) -> Obj:
        try:
            return self._call(func, IMAGE_GROUP, IMAGE_VERSION, namespace, IMAGESTREAMS, name, body)
        except ApiException as err:
            if is_conflict(err) or is_not_found(err):
                raise Conflict(f"ImageStream {namespace}/{name} changed") from None
            if is_forbidden(err) or is_invalid(err):
                raise Denied(refusal(err)) from None
            raise _failed("writing the ImageStream", err) from None
        except (HTTPError, OSError, ValueError) as err:
            raise _failed("writing the ImageStream", err) from None

    def streams(self) -> list[Obj]:
        """Every ImageStream in the cluster, read live: only for a delete that wrote no
        stream, which has no write of its own to wait for the cache to catch up to."""
        return list(self._list(IMAGESTREAMS))

    def image(self, digest: str) -> Obj | None:
        """The Image recording ``digest`` as the API server has it now, or None."""
        try:
            return self._read(
                self._custom.get_cluster_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                IMAGES,
                image_object_name(digest),
            )
        except ApiException as err:
            if is_not_found(err):
                return None
            raise _failed("reading an Image", err) from None
        except (NotAnObject, HTTPError, OSError, ValueError) as err:
            raise _failed("reading an Image", err) from None

    def _list(self, plural: str) -> Iterator[Obj]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            try:
                page = self._call(
                    self._custom.list_cluster_custom_object,
                    IMAGE_GROUP,
                    IMAGE_VERSION,
                    plural,
                    timeout=LIST_SECONDS,
                    **kwargs,
                )
            except (ApiException, HTTPError, OSError, ValueError) as err:
                raise _failed(f"listing {plural}", err) from None
            items = page.get("items")
            yield from (item for item in (items or []) if isinstance(item, dict))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def delete_image(self, image: Obj) -> bool:
        """Delete ``image`` as it was read (uid and resourceVersion preconditions): one a
        push marked or changed since is kept. False when it was kept or gone already."""
        meta = metadata(image)
        preconditions = {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        try:
            self._call(
                self._custom.delete_cluster_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                IMAGES,
                meta.get("name"),
                body={"preconditions": preconditions},
            )
            return True
        except ApiException as err:
            if is_conflict(err) or is_not_found(err):
                return False
            raise _failed("deleting an Image", err) from None
        except NotAnObject:
            return True
        except (HTTPError, OSError, ValueError) as err:
            raise _failed("deleting an Image", err) from None

    def drop_mark(self, image: Obj) -> None:
        """Take the push-by-digest mark off ``image`` (a JSON Patch that first tests the
        resourceVersion read): the repository it names deleted that digest."""
        meta = metadata(image)
        key = ANNOTATION_PUSHED_BY_DIGEST.replace("~", "~0").replace("/", "~1")
        version = meta.get("resourceVersion")
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "remove", "path": f"/metadata/annotations/{key}"},
        ]
        try:
            self._call(
                self._custom.patch_cluster_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                IMAGES,
                meta.get("name"),
                patch,
            )
        except ApiException as err:
            if is_not_found(err):
                return
            raise _failed("unmarking an Image", err) from None
        except (HTTPError, OSError, ValueError) as err:
            raise _failed("unmarking an Image", err) from None
