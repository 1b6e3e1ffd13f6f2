"""What ``prune images`` prints: a table a person reads (what, why, bytes) and one summary
line, the same for a dry run (what it would remove) and ``--confirm`` (what it removed).
Pure: a plan in, text out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from controller.imageprune.plan import Plan, Policy

HEADER: Final = ("ACTION", "WHAT", "WHY", "BYTES")
SHORT_DIGEST: Final = 19
"""``sha256:`` and 12 hex digits: the length ``docker images`` shows an ID at."""
BINARY_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB")


def short(digest: str) -> str:
    return digest[:SHORT_DIGEST]


def human_bytes(size: int) -> str:
    """``1.5 MiB``; bytes below 1 KiB as they are."""
    value = float(size)
    for unit in BINARY_UNITS:
        if value < 1024 or unit == BINARY_UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def rows(plan: Plan, policy: Policy) -> Iterator[tuple[str, str, str, str]]:
    for revision in plan.revisions:
        yield (
            "remove tag revision",
            f"{revision.repository}:{revision.tag} {short(revision.image)}",
            f"older than the newest {policy.keep_tag_revisions}, created {revision.created}",
            "",
        )
    for image in plan.images:
        yield (
            "delete image",
            image.digest,
            "no ImageStream references it",
            human_bytes(image.freed_bytes),
        )
    for repository, digest in plan.manifests:
        yield ("delete manifest", f"{repository}@{short(digest)}", "its Image is deleted", "")
    for kept in plan.kept:
        yield ("keep image", kept.digest, kept.why, "")


def table(plan: Plan, policy: Policy) -> str:
    """Columns padded to their widest cell; the last column (bytes) right-aligned."""
    lines = [HEADER, *rows(plan, policy)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            [
                *(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=False)),
                line[-1].rjust(widths[-1]),
            ]
        ).rstrip()
        for line in lines
    )


def summary(plan: Plan, *, confirmed: bool) -> str:
    verb = "removed" if confirmed else "would remove"
    freed = "freed" if confirmed else "would free"
    line = (
        f"{verb} {len(plan.revisions)} tag revisions, {len(plan.images)} images and "
        f"{len(plan.manifests)} manifests; {freed} {human_bytes(plan.freed_bytes)} "
        f"({plan.freed_bytes} bytes) of blobs once the registry collects them"
    )
    return line if confirmed else line + " (dry run: add --confirm to remove them)"
