"""What the node's ``certs.d`` must hold for the mounted ConfigMap, and the steps from what
it holds: pure, plain data in and out (``nodeca.files`` reads and writes).

One directory per registry host, named ``host:port`` as containerd looks it up
(``hostPaths`` in containerd 1.6's ``remotes/docker/config/config_unix.go``), holding:

- ``ca.crt``: the CA bundle of the ConfigMap key;
- ``hosts.toml``: ``server`` and one ``[host]`` table naming ``ca = "ca.crt"``. containerd
  resolves a relative path against the host directory (``parseHostsFile(hostsDir, ...)``
  then ``makeAbsPath(cert, baseDir)`` in v1.6.20's ``remotes/docker/config/hosts.go``;
  "relative to the hosts.toml file" in its docs/hosts.md), so the file names no path of
  the node and reads the same inside the pod and on the node. The ``[host]`` table is
  required there: without one ``getSortedHosts`` fails ("invalid `host` tree") and
  containerd falls back to the directory's ``*.crt`` files;
- ``MARKER``: this directory is ours. Only a directory carrying it is ever rewritten or
  removed: a directory a user made for the same host is theirs, left alone and reported.

Write order makes every moment safe to crash in and safe for a pull in between: the
marker first (a half-written directory is still known as ours after a restart), then the
CA, then ``hosts.toml``, which names the CA and so must come last. Removal runs the other
way: ``hosts.toml`` first, so containerd stops naming a CA before it goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from quota.registrycerts import host_for_key

CA_FILE: Final = "ca.crt"
HOSTS_FILE: Final = "hosts.toml"
MARKER: Final = ".registry-v2-node-ca"
"""Ours: not a ``.crt``/``.cert``/``.key`` name, so containerd's fallback reads nothing of it."""
MARKER_TEXT: Final = b"written by image-registry-webhook node-ca; removed with its host\n"
WRITE_ORDER: Final = (MARKER, CA_FILE, HOSTS_FILE)
REMOVE_ORDER: Final = (HOSTS_FILE, CA_FILE, MARKER)
_HOST: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9.]*(:[0-9]{1,5})?")
"""A host directory name we may make: a DNS name or IPv4 address, an optional port; never
``.``/``..``, a path separator, or a name starting with a dot (the kubelet's ``..data``)."""


def hosts_toml(host: str) -> bytes:
    """containerd's ``hosts.toml`` for ``host`` (``host[:port]``), trusting ``ca.crt``."""
    url = f"https://{host}"
    return (
        "# Written by image-registry-webhook node-ca from the ConfigMap\n"
        "# image-registry-certificates; it is rewritten, edit that instead.\n"
        f'server = "{url}"\n'
        "\n"
        f'[host."{url}"]\n'
        '  capabilities = ["pull", "resolve", "push"]\n'
        f'  ca = "{CA_FILE}"\n'
    ).encode()


def desired_hosts(mounted: Mapping[str, bytes]) -> tuple[dict[str, dict[str, bytes]], list[str]]:
    """Directory name -> file -> content, for each mounted key; and the keys refused
    (no host directory can be named from them)."""
    desired: dict[str, dict[str, bytes]] = {}
    refused: list[str] = []
    for key, bundle in sorted(mounted.items()):
        host = host_for_key(key)
        if not _HOST.fullmatch(host) or not bundle.strip():
            refused.append(key)
            continue
        desired[host] = {MARKER: MARKER_TEXT, CA_FILE: bundle, HOSTS_FILE: hosts_toml(host)}
    return desired, refused


@dataclass(frozen=True)
class Present:
    """A directory under ``certs.d`` as it is: whether ours, and our files' contents."""

    ours: bool
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class Write:
    directory: str
    name: str
    content: bytes


@dataclass(frozen=True)
class Removal:
    directory: str


@dataclass(frozen=True)
class Plan:
    writes: tuple[Write, ...]
    removals: tuple[Removal, ...]
    foreign: tuple[str, ...]
    """Hosts wanted whose directory is a user's: left alone."""

    @property
    def empty(self) -> bool:
        return not self.writes and not self.removals


def plan(desired: Mapping[str, Mapping[str, bytes]], present: Mapping[str, Present]) -> Plan:
    """The writes (in ``WRITE_ORDER`` per directory) and removals that make ``present``
    hold ``desired``, touching only directories that are ours or absent."""
    writes: list[Write] = []
    foreign: list[str] = []
    for directory, files in sorted(desired.items()):
        now = present.get(directory)
        if now is not None and not now.ours:
            foreign.append(directory)
            continue
        have = now.files if now is not None else {}
        writes += [
            Write(directory, name, files[name])
            for name in WRITE_ORDER
            if have.get(name) != files[name]
        ]
    removals = tuple(
        Removal(directory)
        for directory, now in sorted(present.items())
        if now.ours and directory not in desired
    )
    return Plan(tuple(writes), removals, tuple(foreign))
