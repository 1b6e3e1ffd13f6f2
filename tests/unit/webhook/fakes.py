"""The assembled app with fake I/O: caches, quota, authentication and events.

``fake_app`` is wired by ``assemble_app`` exactly as ``serve`` wires it; the fuzz tests
drive it through Flask's test client, ``served`` runs it under the real gunicorn server.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from quota.decision import Decision
from quota.objects import Obj
from quota.resourcequota import ChargePlan
from webhook.main import assemble_app
from webhook.pushreview.auth import User

TOKEN = "fuzz-token"
"""The one bearer token ``Auth`` accepts."""


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

    def limit_ranges_in(self, namespace: str) -> list[Obj]:
        return self.limit_ranges if namespace == "team-a" else []

    def image(self, digest: str) -> Obj | None:
        return {"dockerImageMetadata": {"size": len(digest) * 100_000}}

    def imagestream(self, namespace: str, name: str) -> Obj | None:
        return None


class Quota:
    def judge(self, namespace: str) -> ChargePlan:
        return ChargePlan(Decision.allow())

    def charge(self, namespace: str) -> ChargePlan:
        return ChargePlan(Decision.allow())


class Auth:
    def authenticate(self, token: str) -> User | None:
        return User("fuzzer") if token == TOKEN else None

    def may_create_pushreview(self, user: User, namespace: str) -> bool:
        return True


class Recorder:
    def record(self, *args: Any, **kwargs: Any) -> None:
        return None


def fake_app() -> Flask:
    auth = Auth()
    return assemble_app(Caches(), Quota(), auth, auth, Recorder(), frozenset({"kube-system"}))
