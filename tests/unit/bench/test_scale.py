"""The scale benchmark's pure helpers: sizes, objects, RSS parsing, readiness counting."""

from __future__ import annotations

from bench import scale
from quota.measure import recorded_image_size, stream_usage
from quota.pullsecrets.names import ANNOTATION_TOKEN_EXPIRATION


def test_sizes_scale_down_but_never_to_zero() -> None:
    assert scale.scaled(scale.IMAGESTREAMS, 0.05) == 1_000
    assert scale.scaled(3, 0.01) == 1


def test_objects_carry_the_history_and_sizes_the_rules_read() -> None:
    stream = {**scale.imagestream("ns", "app"), "status": scale.imagestream_status("ns", "app")}
    usage = stream_usage(stream)
    assert len(usage.tags) == scale.TAGS_PER_STREAM
    assert len(usage.images) == scale.TAGS_PER_STREAM * scale.HISTORY_PER_TAG
    image = scale.image(3)
    assert recorded_image_size(image) == image["dockerImageMetadata"]["size"]


def test_rss_is_read_from_proc_status() -> None:
    assert scale.rss_mib("Name:\tpython\nVmRSS:\t  204800 kB\nThreads:\t4\n") == 200.0
    assert scale.rss_mib("Name:\tzombie\n") is None


def test_only_tokened_secrets_of_the_round_count() -> None:
    def secret(name: str, tokened: bool) -> dict[str, object]:
        annotations = {ANNOTATION_TOKEN_EXPIRATION: "t"} if tokened else {}
        return {"metadata": {"name": name, "annotations": annotations}}

    page = {
        "items": [
            secret("new-0-00001-dockercfg", True),
            secret("new-0-00002-dockercfg", False),
            secret("new-1-00001-dockercfg", True),
        ]
    }
    assert scale.ready_secret_count(page, "new-0-") == 1
