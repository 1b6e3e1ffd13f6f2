from __future__ import annotations

from controller.imageprune.plan import ImageRemoval, Kept, Plan, Policy, Revision
from controller.imageprune.report import human_bytes, summary, table

DIGEST = "sha256:" + "a" * 64


def sample() -> Plan:
    return Plan(
        revisions=(Revision("team-a/app", "v1", DIGEST, "2026-12-05T12:00:00Z", 3),),
        statuses={},
        images=(ImageRemoval(DIGEST, "sha256-" + "a" * 64, ("team-a/app",), 1536),),
        kept=(Kept("sha256:" + "b" * 64, "used by Pod team-a/web"),),
        freed_bytes=1536,
        manifests=(("team-a/app", DIGEST),),
    )


def test_bytes_read_as_binary_units() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
    ]


def test_the_table_says_what_why_and_bytes_for_each_removal_and_kept_image() -> None:
    lines = table(sample(), Policy(keep_tag_revisions=3)).splitlines()
    assert lines[0].split() == ["ACTION", "WHAT", "WHY", "BYTES"]
    assert lines[1].startswith("remove tag revision  team-a/app:v1 sha256:aaaaaaaaaaaa")
    assert "older than the newest 3, created 2026-12-05T12:00:00Z" in lines[1]
    assert lines[2].startswith("delete image") and lines[2].endswith("1.5 KiB")
    assert lines[3].startswith("delete manifest") and "team-a/app@sha256:aaaaaaaaaaaa" in lines[3]
    assert lines[4].startswith("keep image") and "used by Pod team-a/web" in lines[4]


def test_the_summary_says_dry_run_or_done() -> None:
    dry = summary(sample(), confirmed=False)
    assert dry.startswith("would remove 1 tag revisions, 1 images and 1 manifests")
    assert "(1536 bytes)" in dry and "--confirm" in dry
    assert summary(sample(), confirmed=True).startswith("removed 1 tag revisions")
