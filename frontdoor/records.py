"""An accepted push's metadata, written through the API server: the ImageStream (created
for a new repository, so that our own admission webhook charges the namespace's quota,
the authoritative check), the Image, and the tag's history in the stream's status
(judged again by the same webhook, so two racing pushes cannot both pass a limit).

Raw JSON in and out through ``kube.jsonapi.JsonApi``, as every API adapter; what to write
is decided by ``quota.pushrecords``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from kube.apierrors import (
    causes,
    is_already_exists,
    is_conflict,
    is_forbidden,
    is_invalid,
    is_not_found,
    status_of,
)
from kube.jsonapi import JsonApi, NotAnObject
from quota.decision import Cause, Decision
from quota.names import IMAGE_API_VERSION, IMAGE_GROUP, IMAGE_VERSION, IMAGES, IMAGESTREAMS
from quota.objects import Obj, metadata
from quota.pushrecords import image_object_name, status_with_tag_event

log = logging.getLogger(__name__)

REQUEST_SECONDS: Final = 10.0
"""One API call; our own webhook's timeout (10 s) is inside it for the writes it judges."""
CONFLICT_RETRIES: Final = 5
"""Status writes lost to a concurrent writer (another push, the quota reconciler never
writes streams) are retried with a fresh read this many times."""


class Denied(Exception):
    """The API server refused the write: ``decision`` says why (``refusal``)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.message)
        self.decision = decision


class RecordFailed(Exception):
    """The API server could not be asked or answered oddly; the push may be retried."""


class StreamGone(RecordFailed):
    """The ImageStream a tag was to be written to is gone: deleted since it was read, or
    since our last write returned it (then the push creates it again, as a fresh one
    would: ``frontdoor.pushes``)."""


class CustomObjects(Protocol):
    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def delete_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any: ...
    def create_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...
    def get_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Any: ...


_CAUSES: Final = frozenset(str(cause) for cause in Cause)
"""The ``StatusCause`` types our admission webhook writes; any other is not ours."""


def refusal(err: ApiException) -> Decision:
    """Why the API server refused a write (403 or 422), from its Status.

    Our admission webhook names the rule and the contract's message in ``details.causes``
    (``webhook.admission.review.render_response``), which the API server passes on as it
    is: the registry client prints that message, never the API server's prefix naming the
    webhook. Any other refusal (RBAC, schema validation, someone else's webhook) is
    ``Cause.REFUSED`` with the Status message."""
    for cause in causes(err):
        if cause.type in _CAUSES and cause.message:
            return Decision.deny(cause.message, Cause(cause.type))
    message = status_of(err).get("message")
    if not isinstance(message, str) or not message:
        message = f"refused by the API server (HTTP {err.status})"
    return Decision.deny(message, Cause.REFUSED)


def _refused(err: ApiException) -> bool:
    """Denied (by our webhook's rules, or RBAC) or invalid: the push's denial. Anything
    else (our webhook's retryable answers among them) is a failure to retry."""
    return is_forbidden(err) or is_invalid(err)


NOT_AN_OBJECT: Final = "the API server's answer is not an object"


class ImageRecords(JsonApi):
    def __init__(
        self, custom: CustomObjects, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        super().__init__(timeout=REQUEST_SECONDS)
        self._custom = custom
        self._clock = clock

    def stream(self, namespace: str, name: str) -> Obj | None:
        """The ImageStream as the API server has it now (not the cache), or None."""
        try:
            return self._read(
                self._custom.get_namespaced_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                namespace,
                IMAGESTREAMS,
                name,
            )
        except ApiException as err:
            raise RecordFailed(f"reading the ImageStream: HTTP {err.status}") from None
        except NotAnObject:
            raise RecordFailed(NOT_AN_OBJECT) from None
        except (HTTPError, OSError, ValueError) as err:
            raise RecordFailed(f"reading the ImageStream: {type(err).__name__}") from None

    def create_stream(self, namespace: str, name: str) -> tuple[Obj, bool]:
        """The repository's ImageStream, created when there is none (charged by our quota
        webhook: ``Denied`` carries its message). True when this call created it."""
        body = {
            "apiVersion": IMAGE_API_VERSION,
            "kind": "ImageStream",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"lookupPolicy": {"local": False}},
        }
        try:
            created = self._call(
                self._custom.create_namespaced_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                namespace,
                IMAGESTREAMS,
                body,
            )
            return created, True
        except ApiException as err:
            if is_already_exists(err):  # a concurrent push (or kubectl) created it first
                existing = self.stream(namespace, name)
                if existing is not None:
                    return existing, False
                raise RecordFailed("the ImageStream was created and deleted meanwhile") from None
            if _refused(err):
                raise Denied(refusal(err)) from None
            raise RecordFailed(f"creating the ImageStream: HTTP {err.status}") from None
        except NotAnObject:
            raise RecordFailed(NOT_AN_OBJECT) from None
        except (HTTPError, OSError, ValueError) as err:
            raise RecordFailed(f"creating the ImageStream: {type(err).__name__}") from None

    def delete_stream(self, stream: Obj) -> None:
        """Undo ``create_stream`` after the registry refused the manifest: an empty stream
        nobody pushed to would hold quota. Only that very object, as it was created (uid
        and resourceVersion preconditions); a 409 means someone else uses it now."""
        meta = metadata(stream)
        # That object, unchanged since its create: a concurrent first push that found it
        # and recorded a tag (and its charge) changed its resourceVersion, and keeps it.
        preconditions = {"uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        try:
            self._call(
                self._custom.delete_namespaced_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                meta.get("namespace"),
                IMAGESTREAMS,
                meta.get("name"),
                body={"preconditions": preconditions},
            )
        except (ApiException, HTTPError, OSError, ValueError) as err:
            # The quota reconciler recounts; the empty stream is the user's to delete.
            log.warning("could not delete the empty ImageStream after a failed push: %s", err)

    def image(self, digest: str) -> Obj | None:
        """The Image recorded for ``digest`` (named as ``save_image`` names it), or None."""
        try:
            return self._read(
                self._custom.get_cluster_custom_object,
                IMAGE_GROUP,
                IMAGE_VERSION,
                IMAGES,
                image_object_name(digest),
            )
        except ApiException as err:
            raise RecordFailed(f"reading the Image: HTTP {err.status}") from None
        except NotAnObject:
            raise RecordFailed(NOT_AN_OBJECT) from None
        except (HTTPError, OSError, ValueError) as err:
            raise RecordFailed(f"reading the Image: {type(err).__name__}") from None

    def save_image(self, image: Obj) -> bool:
        """Create the Image; one that exists already (the same digest, pushed before or
        to another repository) is the same content and is kept. True when created."""
        try:
            self._call(
                self._custom.create_cluster_custom_object, IMAGE_GROUP, IMAGE_VERSION, IMAGES, image
            )
        except ApiException as err:
            if is_already_exists(err):
                return False
            if _refused(err):
                raise Denied(refusal(err)) from None
            raise RecordFailed(f"creating the Image: HTTP {err.status}") from None
        except (HTTPError, OSError, ValueError) as err:
            raise RecordFailed(f"creating the Image: {type(err).__name__}") from None
        return True

    def tag(
        self, stream: Obj, tag: str, digest: str, reference: str, *, remembered: bool = False
    ) -> Obj:
        """Make ``tag`` point at ``digest`` in the stream's status history, judged by our
        webhook (``Denied``); the stream as the API server has it after the write.

        ``stream`` may be older than the stored one (``remembered``: a push took it from
        what our last write returned): the write carries its resourceVersion, so a stale
        one is a 409 (answered before admission, so our webhook never judges it), and a
        stream deleted since is a 404; either re-reads the stream live and tries again
        (``StreamGone`` when it is gone).
        A remembered stream whose tag already points at ``digest`` sends no write, so no
        409 or 404 can say it is stale: it is read live first, and decided on that."""
        meta = metadata(stream)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        current: Obj | None = stream
        live = not remembered
        writes = 0
        while writes < CONFLICT_RETRIES:
            if current is None:
                raise StreamGone("the ImageStream was deleted during the push")
            status = status_with_tag_event(current, tag, digest, reference, self._clock())
            if status is None:
                if live:
                    return current
                # "Already recorded" from our own last write says nothing of the stored
                # stream: another push may have moved the tag since (the registry's tag
                # would then move back while the stream says otherwise), or the stream
                # may be gone (a tag with no stream and no quota charge).
                current, live = self.stream(namespace, name), True
                continue
            writes += 1
            body = {**current, "status": status}
            try:
                return self._call(
                    self._custom.replace_namespaced_custom_object_status,
                    IMAGE_GROUP,
                    IMAGE_VERSION,
                    namespace,
                    IMAGESTREAMS,
                    name,
                    body,
                )
            except ApiException as err:
                if _refused(err):
                    raise Denied(refusal(err)) from None
                if not (is_conflict(err) or is_not_found(err)):
                    raise RecordFailed(f"tagging: HTTP {err.status}") from None
            except NotAnObject:
                raise RecordFailed(NOT_AN_OBJECT) from None
            except (HTTPError, OSError, ValueError) as err:
                raise RecordFailed(f"tagging: {type(err).__name__}") from None
            current, live = self.stream(namespace, name), True
        raise RecordFailed(f"tagging: {CONFLICT_RETRIES} conflicting writes in a row")
