"""Which Images the cluster's workloads use, from their image references: the pruner keeps
them, as ``oc adm prune images`` keeps what pods and their templates name.

The grammar is distribution's own (``reference/regexp.go``), so a reference is parsed as
the kubelet's container runtime parses it; one that breaks it is reported, and the run
fails on it unless told to skip it (``--ignore-invalid-refs``), as oc does. Pure: plain
objects in, digests out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from quota.objects import Obj, mapping, metadata
from quota.served import current_images

# distribution's reference/regexp.go, term by term (v3.1.2).
_ALPHANUMERIC: Final = r"[a-z0-9]+"
_SEPARATOR: Final = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT: Final = f"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST: Final = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN: Final = rf"{_HOST}(?::[0-9]+)?"
_TAG: Final = r"[\w][\w.-]{0,127}"
_DIGEST: Final = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE: Final = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
MAX_NAME_LENGTH: Final = 255
"""distribution's ``NameTotalLengthMax``: a longer repository name is no reference."""
DEFAULT_TAG: Final = "latest"
"""The tag a reference without tag or digest means (distribution's ``normalize.go``)."""

POD_SPEC_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "Pod": ("spec",),
    "ReplicationController": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Where each kind the pruner reads holds its pod spec."""
CONTAINER_LISTS: Final = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True)
class Reference:
    """One parsed image reference: ``host`` is "" when the reference names none (Docker
    Hub's, never this registry's)."""

    host: str
    repository: str
    tag: str | None
    digest: str | None


@dataclass(frozen=True)
class Use:
    """One container's image, and who names it (``Pod team-a/web``)."""

    owner: str
    image: str


@dataclass(frozen=True)
class InvalidReference:
    owner: str
    image: str
    reason: str


@dataclass(frozen=True)
class InUse:
    """The digests workloads use, who uses each (for the report), and what could not be
    read."""

    owners: Mapping[str, tuple[str, ...]]
    invalid: tuple[InvalidReference, ...]

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(self.owners)


def parse_reference(text: str) -> Reference | str:
    """The reference, or why it is none (a plain string)."""
    match = REFERENCE.fullmatch(text)
    if match is None:
        return "not an image reference (distribution's grammar)"
    name = match.group("name")
    if len(name) > MAX_NAME_LENGTH:
        return f"repository name longer than {MAX_NAME_LENGTH} characters"
    first, slash, rest = name.partition("/")
    # normalize.go's splitDockerDomain: the first component is a host when it has a dot,
    # a port or a capital letter, or is localhost; otherwise the name is Docker Hub's.
    is_host = slash and (
        "." in first or ":" in first or first == "localhost" or first != first.lower()
    )
    host, repository = (first, rest) if is_host else ("", name)
    return Reference(host, repository, match.group("tag"), match.group("digest"))


def workload_uses(kind: str, obj: Obj) -> Iterator[Use]:
    """Every container image ``obj`` (of ``kind``) names, in its pod spec."""
    spec: Any = obj
    for key in POD_SPEC_PATHS.get(kind, ()):
        spec = mapping(spec).get(key)
    meta = metadata(obj)
    owner = f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}"
    for field in CONTAINER_LISTS:
        containers = mapping(spec).get(field)
        for container in containers if isinstance(containers, list) else []:
            image = mapping(container).get("image")
            if isinstance(image, str) and image:
                yield Use(owner, image)


def in_use(uses: Iterable[Use], hosts: Iterable[str], streams: Iterable[Obj]) -> InUse:
    """The digests ``uses`` keep. By digest: that digest, whatever the host (the same
    digest is the same content, so keeping it for a mirror's reference costs nothing and
    never breaks a pull). By tag, on a host of this registry (``hosts``): what the tag
    of ``<namespace>/<name>`` points at now, as a pull of it would resolve."""
    ours = frozenset(hosts)
    current: dict[str, Mapping[str, str]] = {}
    for stream in streams:
        meta = metadata(stream)
        current[f"{meta.get('namespace')}/{meta.get('name')}"] = current_images(stream)
    owners: dict[str, list[str]] = {}
    invalid: list[InvalidReference] = []
    for use in uses:
        parsed = parse_reference(use.image)
        if isinstance(parsed, str):
            invalid.append(InvalidReference(use.owner, use.image, parsed))
            continue
        digest = parsed.digest
        if digest is None and parsed.host in ours:
            digest = current.get(parsed.repository, {}).get(parsed.tag or DEFAULT_TAG)
        if digest is not None:
            owners.setdefault(digest, []).append(use.owner)
    return InUse(
        {digest: tuple(dict.fromkeys(names)) for digest, names in owners.items()},
        tuple(invalid),
    )
