"""The image as the Dockerfile builds it: a pinned base, a numeric non-root user, the
console script in exec form, OCI labels of this release, a build context of only what it
copies, and the ports the manifests name. (No Docker engine here: what the image runs is
run by tests/integration/test_image.py.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from tests.dockerimage import ROOT, read

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PINNED_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm")
"""One Python patch release (the project's floor, requires-python) on Debian 12."""
DEPLOYMENTS = ("webhook.yaml", "controller.yaml")


def test_the_base_is_one_pinned_python_patch_release() -> None:
    bases = read().bases
    assert len(set(bases)) == 1, bases
    assert PINNED_BASE.fullmatch(bases[0]), bases[0]
    assert PROJECT["requires-python"] == ">=3.11"


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    """Numeric, so the kubelet can enforce runAsNonRoot without reading /etc/passwd."""
    user, _, group = read().user.partition(":")
    assert user.isdigit() and int(user) != 0
    assert group.isdigit() and int(group) != 0


def test_the_entrypoint_is_the_console_script_in_exec_form() -> None:
    image = read()
    assert image.exec_form
    assert image.entrypoint == tuple(PROJECT["scripts"])
    assert image.cmd == ("serve",)


def test_python_writes_nothing_beside_its_modules() -> None:
    """The root filesystem is read-only: no bytecode written at import, no home."""
    env = read().env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/nonexistent"


def test_the_oci_labels_describe_this_release() -> None:
    image = read()
    labels = image.labels
    assert labels["org.opencontainers.image.version"] == PROJECT["version"]
    assert labels["org.opencontainers.image.title"] == PROJECT["name"]
    assert labels["org.opencontainers.image.licenses"] == PROJECT["license"]["text"]
    assert labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.base.name"].endswith(f"/{image.bases[-1]}")


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    """An allow-list: a virtualenv, the local cluster's keys or a test never enter it."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p.removeprefix("!") for p in patterns if p.startswith("!")}
    assert allowed == set(read().context_sources)
    assert {"**/__pycache__", "**/*.pyc"} <= set(patterns)


def test_the_exposed_ports_are_the_containers_ports() -> None:
    ports = {
        str(port["containerPort"])
        for name in DEPLOYMENTS
        for document in yaml.safe_load_all((ROOT / "manifests" / "base" / name).read_text())
        if document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
        for port in container["ports"]
    }
    assert set(read().exposed) == ports


def test_the_deployments_run_as_the_images_user() -> None:
    uid, _, gid = read().user.partition(":")
    for name in DEPLOYMENTS:
        [deployment] = [
            d
            for d in yaml.safe_load_all(Path(ROOT / "manifests" / "base" / name).read_text())
            if d["kind"] == "Deployment"
        ]
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
        assert context["runAsNonRoot"] is True
