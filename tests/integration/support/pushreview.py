"""A caller of the PushReview API and the push specs it sends, for every test that
reviews a push."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.integration.support.cluster import ClusterEnv, HttpResult
from tests.integration.support.objects import digest

PATH = "/v1/pushreviews"
"""Where our server answers PushReviews."""
JSON = {"Content-Type": "application/json"}


@dataclass
class Caller:
    cluster: ClusterEnv
    namespace: str
    token: str

    def review(self, spec: dict[str, Any], token: str | None = None) -> HttpResult:
        body = {"apiVersion": "image.alauda.io/v1", "kind": "PushReview", "spec": spec}
        return self.raw(json.dumps(body).encode(), token)

    def raw(
        self, body: bytes, token: str | None = None, headers: dict[str, str] | None = None
    ) -> HttpResult:
        all_headers = dict(JSON if headers is None else headers)
        if token is not None or self.token:
            all_headers["Authorization"] = f"Bearer {token if token is not None else self.token}"
        return self.cluster.server_request("POST", PATH, body, all_headers)


def push(
    namespace: str,
    repository: str = "app",
    tag: str | None = "v1",
    n: int = 1,
    layers: tuple[int, ...] = (1000,),
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespace": namespace,
        "repository": repository,
        "digest": digest(n),
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": digest(10_000 + n), "size": 100},
        "layers": [{"digest": digest(20_000 + i), "size": size} for i, size in enumerate(layers)],
    }
    if tag is not None:
        spec["tag"] = tag
    return spec
