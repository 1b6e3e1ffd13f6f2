"""No token in any log line at any level, over a whole scenario; and one format per line.

A stack of its own runs its processes at DEBUG; the scenario mints tokens every way the
service sees them (managed pull secrets, created and refreshed; PushReview callers' bearer
tokens, accepted and refused by TokenReview; the processes' own credentials), then every
file of the stack's log directory is searched for each of them in every form it takes.
Local stack only: it starts its own control plane and reads the processes' log files.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.stack import CONTROLLER_ACCOUNT, SERVER_ACCOUNT, Stack
from tests.integration.support.cluster import CACHE_DEADLINE, ClusterEnv, own_stack
from tests.integration.support.pullsecrets import INTERNAL, docker_config, hostnames, wait_secret
from tests.integration.support.pushreview import Caller, push

pytestmark = pytest.mark.local_only

DEBUG = "--log-level=DEBUG"
PROCESS_LOGS = ("webhook.log", "controller.log")
SERVICE_ACCOUNTS = ("one", "two")
FRAGMENT = 16
"""Characters of a token's signature that count as a leak: 96 random bits, which no log
line holds by chance."""


@pytest.fixture(scope="module")
def debug_cluster() -> Iterator[ClusterEnv]:
    with own_stack(webhook_args=[DEBUG], controller_args=[DEBUG]) as cluster:
        yield cluster


def forms(token: str) -> dict[str, str]:
    """Every shape a token takes on its way through the service, by name."""
    _header, payload, signature = token.split(".")
    auth = base64.b64encode(f"serviceaccount:{token}".encode()).decode()
    return {
        "token": token,
        "claims": payload,
        "signature": signature,
        "base64": base64.b64encode(token.encode()).decode(),
        "dockerconfig auth": auth,
    }


def secret_values(cluster: ClusterEnv, namespace: str, sa: str) -> tuple[list[str], list[str]]:
    """The tokens in an SA's managed Secret, and the Secret's data as stored and decoded."""
    secret = wait_secret(cluster, namespace, sa)
    data = secret["data"][".dockerconfigjson"]
    tokens = sorted({entry["password"] for entry in docker_config(secret)["auths"].values()})
    return tokens, [data, base64.b64decode(data).decode()]


def process_token(stack: Stack, account: str) -> str:
    kubeconfig = yaml.safe_load(stack.process_kubeconfig(account).read_text())
    return str(kubeconfig["users"][0]["user"]["token"])


def run_scenario(cluster: ClusterEnv, namespace: str) -> tuple[list[str], list[str]]:
    """Drive every path that handles a token; the tokens and raw Secret data seen."""
    tokens: list[str] = []
    raw: list[str] = []
    for sa in SERVICE_ACCOUNTS:
        cluster.kubectl("create", "serviceaccount", sa, "-n", namespace)
    for sa in SERVICE_ACCOUNTS:
        found, data = secret_values(cluster, namespace, sa)
        tokens += found
        raw += data
    # A new registry hostname refreshes every token at once.
    host = f"registry-{uuid.uuid4().hex[:6]}.example.com"
    cluster.apply(
        {
            "apiVersion": "imageregistry.operator.alauda.io/v1",
            "kind": "Config",
            "metadata": {"name": "cluster"},
            "spec": {"routes": [{"name": "public", "hostname": host}]},
        }
    )
    cluster.wait(
        lambda: all(
            hostnames(cluster, namespace, sa) == INTERNAL | {host} for sa in SERVICE_ACCOUNTS
        ),
        timeout=CACHE_DEADLINE,
        what="every managed secret to be refreshed",
    )
    for sa in SERVICE_ACCOUNTS:
        found, data = secret_values(cluster, namespace, sa)
        tokens += found
        raw += data
    # PushReview: a caller's real token, accepted; one for another audience and a made-up
    # one, refused by TokenReview.
    cluster.kubectl("create", "serviceaccount", "registry", "-n", namespace)
    cluster.kubectl(
        "create", "clusterrolebinding", f"{namespace}-pushreviews",
        "--clusterrole=registry-v2:pushreview-creator", f"--serviceaccount={namespace}:registry",
    )  # fmt: skip
    good = cluster.kubectl("create", "token", "registry", "-n", namespace).stdout.strip()
    other = cluster.kubectl(
        "create", "token", "registry", "-n", namespace, "--audience=somewhere-else"
    ).stdout.strip()  # fmt: skip
    made_up = "eyJhbGciOiJSUzI1NiJ9." + uuid.uuid4().hex + "." + uuid.uuid4().hex
    tokens += [good, other, made_up]
    caller = Caller(cluster, namespace, good)
    cluster.wait(
        lambda: caller.review(push(namespace)).status == 200,
        timeout=CACHE_DEADLINE,
        what="an accepted PushReview",
    )
    for refused in (other, made_up):
        assert caller.review(push(namespace), token=refused).status == 401
    # Admission of an ImageStream and a ServiceAccount update, for their lines at DEBUG.
    cluster.apply(
        {"apiVersion": "image.alauda.io/v1", "kind": "ImageStream", "metadata": {"name": "app"}},
        "-n",
        namespace,
    )
    cluster.kubectl("label", "serviceaccount", "one", "-n", namespace, "touched=yes")
    cluster.kubectl("delete", "config.imageregistry.operator.alauda.io", "cluster")
    return tokens, raw


def leaks(log_dir: Path, tokens: list[str], raw: list[str]) -> list[str]:
    """Where any form of any token (or raw Secret data), or any part of a token's
    signature as long as ``FRAGMENT``, appears: file and form, never the value itself, so
    a failure does not print it either."""
    needles = [
        (f"token {i} as {name}", value)
        for i, token in enumerate(tokens)
        for name, value in forms(token).items()
    ]
    needles += [(f"Secret data {i}", value) for i, value in enumerate(raw)]
    fragments = {
        token.split(".")[2][start : start + FRAGMENT]: i
        for i, token in enumerate(tokens)
        for start in range(len(token.split(".")[2]) - FRAGMENT + 1)
    }
    found = []
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        found += [f"{path.name}: {what}" for what, value in needles if value in text]
        windows = {text[start : start + FRAGMENT] for start in range(len(text) - FRAGMENT + 1)}
        found += sorted(
            {f"{path.name}: part of token {i}" for part, i in fragments.items() if part in windows}
        )
    return found


def parsed_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process log as JSON (the default --log-format); fails on any other."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{path.name}:{number} is not a JSON line: {line[:200]!r}")
    return lines


def test_no_token_reaches_any_log_at_debug_and_every_line_is_json(
    debug_cluster: ClusterEnv,
) -> None:
    cluster = debug_cluster
    stack = cluster.stack
    assert stack is not None
    namespace = f"logs-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    tokens, raw = run_scenario(cluster, namespace)
    tokens += [process_token(stack, account) for account in (SERVER_ACCOUNT, CONTROLLER_ACCOUNT)]
    # Stopped, so that every line they were going to write is written.
    stack.stop_controller()
    stack.stop_webhook()

    found = leaks(stack.cp.log_dir, tokens, raw)
    assert not found, "tokens in the logs (file: which token, in which form)"
    for name in PROCESS_LOGS:
        lines = parsed_lines(stack.cp.log_dir / name)
        assert any((line["msg"], line["level"]) == ("settings", "DEBUG") for line in lines), (
            f"{name} was not at DEBUG"
        )
    # Two replicas share the port: a request is in whichever log its replica writes.
    webhook = [
        line
        for path in sorted(stack.cp.log_dir.glob("webhook*.log"))
        for line in parsed_lines(path)
    ]
    assert any(line["logger"] == "gunicorn.error" for line in webhook)
    admissions = [line for line in webhook if line["msg"] == "admission"]
    assert any(
        (line["namespace"], line["name"], line["operation"]) == (namespace, "app", "CREATE")
        for line in admissions
    )
    assert all({"uid", "decision", "ms"} <= set(line) for line in admissions)
    assert any(line["msg"] == "pushreview" and line["namespace"] == namespace for line in webhook)
