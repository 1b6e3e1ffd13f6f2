"""One address's made-up tokens never lock out the valid tokens of that address (issue 17
item 5), through the real front door, the real API server's TokenReview and its published
service-account keys: behind an ingress or a NAT every client shares one address."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from localcluster.crane import Crane
from localcluster.frontdoor import LocalFrontDoor
from localcluster.waiting import wait_for
from serving.callerreviews import REQUEST_TIMEOUT, UNKNOWN_TOKEN_BURST, UNKNOWN_TOKEN_QPS
from tests.integration.support.cluster import ClusterEnv
from tests.integration.support.pullsecrets import REGISTRY_AUDIENCE
from tests.integration.support.registry import account, image_dir, login

pytestmark = pytest.mark.local_only

MADE_UP = 40
"""The issue's reproduction: 40 made-up tokens from one address."""
FRESH_TOKENS = 3
"""Valid tokens minted before the flood and first shown during it: each must pass (one
slipping through a refill of the bucket would prove nothing)."""
FLOOD_DEADLINE = MADE_UP * REQUEST_TIMEOUT
"""Each made-up token is at most one TokenReview, bounded by the authenticator's timeout."""
HTTP_TIMEOUT = 30.0
"""As the other front-door tests' raw requests."""


def minted(stack: ClusterEnv, namespace: str, name: str, n: int) -> str:
    """A fresh TokenRequest token for the registry audience (each ``n`` its own lifetime,
    so that no two are equal)."""
    token = stack.kubectl(
        "create", "token", name, "-n", namespace, f"--audience={REGISTRY_AUDIENCE}",
        f"--duration={3600 + n}s",
    )  # fmt: skip
    return str(token.stdout.strip())


def made_up_tokens(real: str) -> Iterator[str]:
    """Garbage, and JWTs that look like the API server's (its issuer, our audience, its
    key id or another) but are signed with a key made here: none can pass the review."""
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = 0
    while True:
        n += 1
        forged = {**claims, "sub": f"system:serviceaccount:x:forged-{n}", "jti": str(n)}
        yield f"made-up-{n}"
        yield jwt.encode(forged, key, "RS256", headers={"kid": header["kid"]})
        yield jwt.encode(forged, key, "RS256", headers={"kid": f"unknown-{n}"})


@dataclass
class Flood:
    """Made-up tokens sent back to back from this address until stopped."""

    url: str
    ca_file: str
    tokens: Iterator[str]
    answers: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                response = session.get(
                    self.url,
                    headers={"Authorization": f"Bearer {next(self.tokens)}"},
                    verify=self.ca_file,
                    timeout=HTTP_TIMEOUT,
                )
                self.answers.append((time.monotonic(), response.status_code))

    def throttled_after(self, moment: float) -> int:
        return sum(1 for at, status in list(self.answers) if at > moment and status == 429)


def test_made_up_tokens_from_one_address_never_lock_out_a_minted_token(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, tmp_path: Path
) -> None:
    """40+ made-up tokens from 127.0.0.1 empty its bucket (429s); tokens minted by
    TokenRequest for the registry audience then pull at once (200), while made-up tokens
    keep getting 429 after the burst."""
    crane = Crane(door.ca_file, tmp_path / "home")
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 1500)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    reader = account(stack, ns, "reader", "registry-viewer")
    fresh = [minted(stack, ns, "reader", n) for n in range(FRESH_TOKENS)]
    url = f"{door.url}/v2/{ns}/app/manifests/v1"
    flood = Flood(url, str(door.ca_file), made_up_tokens(reader))
    thread = threading.Thread(target=flood.run, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: len(flood.answers) >= MADE_UP and flood.throttled_after(0.0) > 0,
            timeout=FLOOD_DEADLINE,
            what=f"{MADE_UP} made-up tokens and the first 429",
        )
        for token in fresh:
            pulled = requests.get(
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": image.manifest.media_type},
                verify=str(door.ca_file),
                timeout=HTTP_TIMEOUT,
            )
            assert pulled.status_code == 200, (pulled.status_code, pulled.text)
            assert pulled.headers["Docker-Content-Digest"] == image.digest
        shown = time.monotonic()
        wait_for(
            lambda: flood.throttled_after(shown) >= UNKNOWN_TOKEN_BURST,
            timeout=FLOOD_DEADLINE,
            what="made-up tokens throttled after the valid ones passed",
        )
    finally:
        flood.stop.set()
        thread.join(HTTP_TIMEOUT)
    statuses = [status for _, status in flood.answers]
    assert set(statuses) <= {401, 429}, f"a made-up token got {set(statuses) - {401, 429}}"
    assert statuses[:UNKNOWN_TOKEN_BURST] == [401] * UNKNOWN_TOKEN_BURST
    elapsed = flood.answers[-1][0] - flood.answers[0][0]
    reviewed = statuses.count(401)
    assert reviewed <= UNKNOWN_TOKEN_BURST + UNKNOWN_TOKEN_QPS * elapsed + 1, (
        "made-up tokens are still reviewed only at the address's rate"
    )


def bound_token(stack: ClusterEnv, namespace: str, name: str, secret: str) -> str:
    """A registry-audience token bound to ``secret``: deleting the Secret revokes it."""
    token = stack.kubectl(
        "create", "token", name, "-n", namespace, f"--audience={REGISTRY_AUDIENCE}",
        "--bound-object-kind=Secret", f"--bound-object-name={secret}",
    )  # fmt: skip
    return str(token.stdout.strip())


def reviewed(stack: ClusterEnv, token: str) -> bool:
    """Whether the API server's TokenReview accepts ``token`` for the registry audience."""
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": [REGISTRY_AUDIENCE]},
    }
    answer = stack.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review))
    return bool(json.loads(answer.stdout).get("status", {}).get("authenticated"))


def test_revoked_tokens_charge_their_address_and_a_minted_token_still_passes(
    stack: ClusterEnv, ns: str, door: LocalFrontDoor, tmp_path: Path
) -> None:
    """Review H3b: a token the API server signed and then revoked (its bound Secret deleted)
    skipped the address's bucket, so revoked tokens were free TokenReviews. Their rejections
    now empty the address's bucket (a made-up token then gets 429 at once), while a freshly
    minted token from the same address still pulls."""
    crane = Crane(door.ca_file, tmp_path / "home")
    login(crane, door, account(stack, ns, "builder", "registry-editor"))
    directory, image = image_dir(tmp_path, 1500)
    assert crane.push(directory, f"{door.host}/{ns}/app:v1").returncode == 0
    account(stack, ns, "reader", "registry-viewer")
    secrets = [f"revoked-{n}" for n in range(UNKNOWN_TOKEN_BURST)]
    for secret in secrets:
        stack.kubectl("create", "secret", "generic", secret, "-n", ns)
    revoked = [bound_token(stack, ns, "reader", secret) for secret in secrets]
    fresh = minted(stack, ns, "reader", 0)
    stack.kubectl("delete", "secret", "-n", ns, *secrets)
    wait_for(
        lambda: not any(reviewed(stack, token) for token in revoked),
        timeout=FLOOD_DEADLINE,
        what="the API server to refuse every token of a deleted Secret",
    )
    url = f"{door.url}/v2/{ns}/app/manifests/v1"

    def get(token: str) -> int:
        return requests.get(
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": image.manifest.media_type},
            verify=str(door.ca_file),
            timeout=HTTP_TIMEOUT,
        ).status_code

    began = time.monotonic()
    assert [get(token) for token in revoked] == [401] * len(revoked)
    made_up = made_up_tokens(fresh)
    statuses = [get(next(made_up))]
    while statuses[-1] != 429 and len(statuses) <= UNKNOWN_TOKEN_BURST:
        statuses.append(get(next(made_up)))
    refilled = UNKNOWN_TOKEN_QPS * (time.monotonic() - began)
    assert statuses.count(401) <= refilled + 1, (
        f"made-up tokens reviewed after {len(revoked)} revoked ones: {statuses}"
    )
    assert statuses[-1] == 429
    assert get(fresh) == 200, "a minted token is never throttled"
