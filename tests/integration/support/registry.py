"""Clients of the front door and of the registry behind it, as the front door's tests
use them: accounts with registry-audience tokens, crane logins, OCI layouts on disk, raw
distribution-spec requests, and the registry asked directly."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.ocilayout import random_layers, write_image
from tests.integration.support.cluster import ClusterEnv, own_stack
from tests.integration.support.pullsecrets import REGISTRY_AUDIENCE

HTTP_SECONDS = 30
"""One request to the front door or the registry on loopback."""
FRONTDOOR_ARGS = ("--workers=1",)
"""One worker: one process whose metrics page and log hold every request, and one token
bucket per address, as the issue's reproduction of a token flood saw it."""


@contextmanager
def frontdoor_stack(*args: str) -> Iterator[ClusterEnv]:
    """A local stack with a front door (``FRONTDOOR_ARGS``, then ``args``) before a real
    CNCF registry."""
    with own_stack(with_frontdoor=True, frontdoor_args=[*FRONTDOOR_ARGS, *args]) as env:
        yield env


def account(stack: ClusterEnv, namespace: str, name: str, role: str | None) -> str:
    """A ServiceAccount bound to ``role`` in ``namespace``; its registry-audience token.
    ``builder`` may exist already: the controller makes one in every namespace."""
    made = stack.kubectl("create", "serviceaccount", name, "-n", namespace, check=False)
    assert made.returncode == 0 or "already exists" in made.stderr, made.stderr
    if role is not None:
        stack.kubectl(
            "create", "rolebinding", f"{name}-{role}", f"--clusterrole={role}",
            f"--serviceaccount={namespace}:{name}", "-n", namespace,
        )  # fmt: skip
    token = stack.kubectl(
        "create", "token", name, "-n", namespace, f"--audience={REGISTRY_AUDIENCE}"
    )
    return str(token.stdout.strip())


def login(crane: Crane, door: LocalFrontDoor, token: str) -> None:
    crane.write_credentials(door.host, "serviceaccount", token)


def image_dir(tmp_path: Path, *sizes: int, seed: int = 1) -> tuple[Path, Any]:
    """An OCI layout of one image with random layers of ``sizes`` (the same for a seed)."""
    directory = tmp_path / f"image-{seed}-{'-'.join(map(str, sizes))}"
    return directory, write_image(directory, random_layers(sizes, seed=seed))


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_query(location: str, query: str) -> str:
    """An upload's Location with ``query`` added (it may carry a query already)."""
    return f"{location}{'&' if '?' in location else '?'}{query}"


class Registry:
    """Raw distribution-spec requests through the front door, as a client library sends them."""

    def __init__(self, door: LocalFrontDoor, token: str) -> None:
        self.base = door.url
        self.ca_file = str(door.ca_file)  # per request: a session's is overridden by env
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.session.request(
            method, url, timeout=HTTP_SECONDS, verify=self.ca_file, **kwargs
        )


class Upstream:
    """The registry behind the front door, asked directly (it trusts whoever reaches it)."""

    def __init__(self, door: LocalFrontDoor) -> None:
        self.url = door.registry.url
        self.ca_file = str(door.registry.ca_file)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.url + path
        return requests.request(method, url, timeout=HTTP_SECONDS, verify=self.ca_file, **kwargs)

    def upload(self, repository: str, blob: bytes) -> str:
        """A monolithic blob upload (POST, then PUT with the digest); the blob's digest."""
        started = self("POST", f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = self(
            "PUT",
            with_query(started.headers["Location"], f"digest={sha256(blob)}"),
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return sha256(blob)
