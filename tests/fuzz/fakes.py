"""The app ``serve`` assembles, wired to fakes: what every fuzz run talks to.

``assemble_app`` is the same function ``serve`` calls; only its I/O is fake, so the fuzzers
reach every handler without a cluster. One namespace has every kind of limit, Images have
sizes, quota always has room, and one bearer token is valid.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from quota.decision import Decision
from quota.limitchecks import ImageSize, Unsized
from quota.measure import StreamUsage
from quota.objects import Obj
from quota.resourcequota import ChargePlan
from serving.callerreviews import User
from webhook.main import assemble_app

TOKEN = "fuzz-token"
EXCLUDED_NAMESPACES = frozenset({"kube-system"})


class Caches:
    """A namespace with every kind of limit, one quota-free namespace, known Images."""

    def __init__(self) -> None:
        self.limit_ranges: list[Obj] = [
            {
                "metadata": {"name": "lr", "namespace": "team-a"},
                "spec": {
                    "limits": [
                        # sha256:a (800 kB) fits, sha256:bb (900 kB) does not
                        {"type": "alauda.io/Image", "max": {"storage": "850Ki"}},
                        {
                            "type": "alauda.io/ImageStream",
                            "max": {"alauda.io/image-tags": "1", "alauda.io/images": "1"},
                        },
                    ]
                },
            }
        ]

    def not_ready(self) -> str | None:
        return None

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        return {"kubernetes.io/metadata.name": name}

    def pull_secret(self, namespace: str, name: str) -> Obj | None:
        return None

    def limit_ranges_in(self, namespace: str) -> list[Obj]:
        return self.limit_ranges if namespace == "team-a" else []

    def image_size(self, digest: str) -> ImageSize:
        return len(digest) * 100_000

    def namespace_blobs(self, namespace: str) -> dict[str, int]:
        return {}

    def imagestream_usage(self, namespace: str, name: str) -> StreamUsage | None:
        return None


class Quota:
    def judge(self, namespace: str, requested: int = 1, resource: str = "") -> ChargePlan:
        return ChargePlan(Decision.allow())

    def charge(self, namespace: str, requested: int = 1, resource: str = "") -> ChargePlan:
        return ChargePlan(Decision.allow())


class Auth:
    def authenticate(self, token: str, source: str) -> User | None:
        return User("fuzzer") if token == TOKEN else None

    def may_create_pushreview(self, user: User, namespace: str) -> bool:
        return True


class Images:
    """The live Image lookup: nothing beyond the cache exists."""

    def image_size(self, digest: str, *, timeout: float) -> ImageSize:
        return Unsized.NO_IMAGE


class Recorder:
    def record(self, *args: Any, **kwargs: Any) -> None:
        return None


def fake_app() -> Flask:
    auth = Auth()
    return assemble_app(Caches(), Quota(), Images(), auth, auth, Recorder(), EXCLUDED_NAMESPACES)
