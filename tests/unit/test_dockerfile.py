"""The image as the Dockerfile builds it: a pinned base, a numeric non-root user, the
console script in exec form, OCI labels of this release, a build context of only what it
copies, and the ports the manifests name. (No Docker engine here: what the image runs is
run by tests/integration/test_image.py.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import dockerfile
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


def commands() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def stages() -> list[list[dockerfile.Command]]:
    """Each stage's commands, its FROM first."""
    found: list[list[dockerfile.Command]] = []
    for command in commands():
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def runs() -> list[dockerfile.Command]:
    return [c for c in commands() if c.cmd == "RUN"]


def test_the_base_is_a_build_argument_whose_default_is_the_public_base() -> None:
    """hack/build-images.sh passes a local Debian root; a plain build gets the pinned one."""
    [first, *_] = commands()
    assert first.cmd == "ARG"
    name, _, default = first.value[0].partition("=")
    assert PINNED_BASE.fullmatch(default), default
    assert {stage[0].value[0] for stage in stages()} == {f"${{{name}}}"}


def test_every_stage_takes_source_date_epoch_for_a_reproducible_build() -> None:
    """As an ARG it is in the environment of every RUN: wheels and bytecode take their
    times from it, so two builds with one value give one digest."""
    for stage in stages():
        assert any(c.cmd == "ARG" and c.value == ("SOURCE_DATE_EPOCH",) for c in stage), stage[0]


def test_the_console_script_is_found_in_the_virtualenv_first() -> None:
    """Debian's Python has no pip and refuses system installs (PEP 668): a virtualenv
    works on both bases, and its bin leads PATH so the ENTRYPOINT is found by name."""
    assert read().env["PATH"].split(":")[0] == "/opt/venv/bin"
    assert any("python3 -m venv /opt/venv" in " ".join(c.value) for c in runs())
    assert any(c.cmd == "COPY" and c.value[0] == "/opt/venv" for c in stages()[-1])


def test_the_images_group_has_a_name() -> None:
    """useradd --user-group would give the user's group GID 1000, leaving 65532 nameless."""
    _, _, gid = read().user.partition(":")
    [script] = [" ".join(c.value) for c in runs() if "useradd" in " ".join(c.value)]
    assert f"groupadd --gid {gid} " in script
    assert script.index("groupadd") < script.index("useradd")
    assert f"--gid {gid} --no-create-home" in script
    assert "--user-group" not in script


def test_pip_sees_the_build_machines_ca_only_through_a_build_secret() -> None:
    """A build secret is mounted for one RUN and recorded nowhere; a --build-arg or ENV
    holding a certificate would stay in the image's history."""
    [pip_run] = [c for c in runs() if "pip wheel" in " ".join(c.value)]
    assert "--mount=type=secret,id=pip-ca,required=false" in pip_run.flags
    assert "PIP_CERT=/run/secrets/pip-ca" in " ".join(pip_run.value)
    for command in commands():
        if command.cmd in ("ARG", "ENV"):
            assert not any("CERT" in v or "CA_BUNDLE" in v for v in command.value), command


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
