"""node-ca's plan: the host directories a mounted ConfigMap asks for, and the steps that
take the node's certs.d there without touching what is not ours."""

from __future__ import annotations

import tomllib

import pytest

from nodeca.plan import (
    CA_FILE,
    HOSTS_FILE,
    MARKER,
    MARKER_TEXT,
    WRITE_ORDER,
    Present,
    Removal,
    desired_hosts,
    hosts_toml,
    plan,
)

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
NEW = b"-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"
SVC = "image-registry.image-registry-system.svc:5000"


def ours(host: str, ca: bytes = CA) -> Present:
    return Present(
        ours=True, files={MARKER: MARKER_TEXT, CA_FILE: ca, HOSTS_FILE: hosts_toml(host)}
    )


def test_hosts_toml_names_the_host_and_its_ca_beside_it() -> None:
    """What containerd 1.6 reads: ``server``, and a ``[host]`` table (required) whose
    relative ``ca`` it resolves against the host directory."""
    parsed = tomllib.loads(hosts_toml(SVC).decode())
    assert parsed["server"] == f"https://{SVC}"
    assert parsed["host"] == {
        f"https://{SVC}": {"capabilities": ["pull", "resolve", "push"], "ca": CA_FILE}
    }


def test_each_key_becomes_its_host_directory() -> None:
    desired, refused = desired_hosts(
        {"image-registry.image-registry-system.svc..5000": CA, "registry.example.com": CA}
    )
    assert refused == []
    assert set(desired) == {SVC, "registry.example.com"}
    assert desired[SVC] == {MARKER: MARKER_TEXT, CA_FILE: CA, HOSTS_FILE: hosts_toml(SVC)}


@pytest.mark.parametrize(
    "key", ["..data", ".hidden", "..", "a..b..c/d", "host..99999999", "x..5000"]
)
def test_a_key_that_names_no_safe_directory_or_holds_nothing_is_refused(key: str) -> None:
    bundle = b"" if key == "x..5000" else CA
    desired, refused = desired_hosts({key: bundle})
    assert (desired, refused) == ({}, [key])


def test_a_new_host_is_written_marker_first_and_hosts_toml_last() -> None:
    desired, _ = desired_hosts({"registry.example.com..443": CA})
    steps = plan(desired, {})
    assert [(w.directory, w.name) for w in steps.writes] == [
        ("registry.example.com:443", name) for name in WRITE_ORDER
    ]
    assert WRITE_ORDER == (MARKER, CA_FILE, HOSTS_FILE)


def test_an_unchanged_node_needs_nothing() -> None:
    desired, _ = desired_hosts({"image-registry.image-registry-system.svc..5000": CA})
    assert plan(desired, {SVC: ours(SVC)}).empty


def test_a_rotated_ca_rewrites_only_the_ca() -> None:
    desired, _ = desired_hosts({"image-registry.image-registry-system.svc..5000": NEW})
    steps = plan(desired, {SVC: ours(SVC)})
    assert [(w.directory, w.name, w.content) for w in steps.writes] == [(SVC, CA_FILE, NEW)]


def test_a_host_gone_from_the_configmap_is_removed_only_if_ours() -> None:
    present = {SVC: ours(SVC), "mirror.example.com": Present(ours=False, files={})}
    steps = plan({}, present)
    assert steps.removals == (Removal(SVC),)
    assert steps.writes == ()


def test_a_users_directory_for_a_wanted_host_is_left_alone_and_reported() -> None:
    desired, _ = desired_hosts({"image-registry.image-registry-system.svc..5000": CA})
    steps = plan(desired, {SVC: Present(ours=False, files={})})
    assert (steps.writes, steps.removals, steps.foreign) == ((), (), (SVC,))


def test_a_half_written_directory_of_ours_is_completed() -> None:
    """A crash after the marker: the next pass knows the directory and finishes it."""
    desired, _ = desired_hosts({"image-registry.image-registry-system.svc..5000": CA})
    steps = plan(desired, {SVC: Present(ours=True, files={MARKER: MARKER_TEXT})})
    assert [w.name for w in steps.writes] == [CA_FILE, HOSTS_FILE]
