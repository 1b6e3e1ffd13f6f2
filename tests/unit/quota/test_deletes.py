"""What a delete takes out of a stream, and what that leaves unreferenced."""

from __future__ import annotations

from typing import Any

from quota.deletes import (
    ancestors,
    blob_holders,
    holding_index,
    holds_tag,
    marked_for,
    repository_images,
    unreferenced,
    without_digest,
    without_mark,
    without_tag,
)
from quota.objects import Obj
from quota.pushrecords import ANNOTATION_PUSHED_BY_DIGEST

D = {name: f"sha256:{name * 64}"[:71] for name in "abcdefgh"}


def _image(
    digest: str,
    *,
    children: tuple[str, ...] = (),
    layers: tuple[str, ...] = (),
    pushed_to: str | None = None,
) -> Obj:
    image: dict[str, Any] = {
        "metadata": {"name": digest.replace(":", "-"), "resourceVersion": "1"},
        "dockerImageReference": f"registry.example/ns/app@{digest}",
    }
    if pushed_to is not None:
        image["metadata"]["annotations"] = {ANNOTATION_PUSHED_BY_DIGEST: pushed_to}
    if children:
        image["dockerImageManifests"] = [{"digest": child} for child in children]
    if layers:
        image["dockerImageLayers"] = [{"name": name, "size": 10} for name in layers]
    return image


def _stream(
    namespace: str, name: str, tags: dict[str, list[str]], spec: tuple[str, ...] = ()
) -> Obj:
    stream: dict[str, Any] = {
        "metadata": {"namespace": namespace, "name": name, "resourceVersion": "7"},
        "status": {
            "dockerImageRepository": "x",
            "tags": [
                {"tag": tag, "items": [{"image": digest} for digest in digests]}
                for tag, digests in tags.items()
            ],
        },
    }
    if spec:
        stream["spec"] = {"lookupPolicy": {"local": False}, "tags": [{"name": n} for n in spec]}
    return stream


def _images(*images: Obj) -> dict[str, Obj]:
    return {str(image["dockerImageReference"]).rsplit("@", 1)[1]: image for image in images}


def test_a_tag_leaves_status_and_spec_and_names_its_whole_history() -> None:
    stream = _stream("ns", "app", {"v1": [D["a"], D["b"]], "v2": [D["b"]]}, spec=("v1", "v3"))
    change = without_tag(stream, "v1")
    assert change.status == {
        "dockerImageRepository": "x",
        "tags": [{"tag": "v2", "items": [{"image": D["b"]}]}],
    }
    assert change.spec == {"lookupPolicy": {"local": False}, "tags": [{"name": "v3"}]}
    # b is still v2's: only a left the stream.
    assert change.removed == {D["a"]}
    assert stream["status"]["tags"][0]["tag"] == "v1"  # the read stream is left as it was


def test_a_tag_only_the_spec_names_changes_the_spec_alone() -> None:
    change = without_tag(_stream("ns", "app", {"v1": [D["a"]]}, spec=("later",)), "later")
    assert (change.status, change.removed) == (None, frozenset())
    assert change.spec is not None and change.spec["tags"] == []


def test_holds_tag_reads_status_and_spec() -> None:
    stream = _stream("ns", "app", {"v1": [D["a"]]}, spec=("s",))
    assert holds_tag(stream, "v1") and holds_tag(stream, "s")
    assert not holds_tag(stream, "v2") and not holds_tag(None, "v1")


def test_a_tag_pointing_at_the_digest_goes_whole_and_is_never_rolled_back() -> None:
    stream = _stream("ns", "app", {"v1": [D["a"], D["b"]], "v2": [D["a"]], "v3": [D["c"]]})
    change = without_digest(stream, D["a"])
    assert change.status is not None and change.status["tags"] == [
        {"tag": "v3", "items": [{"image": D["c"]}]},
    ]
    assert (change.spec, change.removed) == (None, frozenset({D["a"], D["b"]}))


def test_a_tag_that_moved_on_loses_only_its_entries_naming_the_digest() -> None:
    stream = _stream("ns", "app", {"v1": [D["c"], D["a"], D["b"]]})
    change = without_digest(stream, D["a"])
    assert change.status is not None and change.status["tags"] == [
        {"tag": "v1", "items": [{"image": D["c"]}, {"image": D["b"]}]},
    ]
    assert change.removed == frozenset({D["a"]})


def test_a_tag_the_digest_takes_leaves_spec_tags_too() -> None:
    stream = _stream("ns", "app", {"v1": [D["a"]], "v2": [D["c"]]}, spec=("v1", "v2"))
    change = without_digest(stream, D["a"])
    assert change.spec is not None and [e["name"] for e in change.spec["tags"]] == ["v2"]


def test_a_digest_the_stream_does_not_hold_changes_nothing() -> None:
    change = without_digest(_stream("ns", "app", {"v1": [D["a"]]}), D["b"])
    assert not change.changed and change.removed == frozenset()


def test_a_mark_taken_away_leaves_the_image_without_it() -> None:
    marked = _image(D["a"], pushed_to="ns/app")
    trimmed = without_mark(marked)
    assert ANNOTATION_PUSHED_BY_DIGEST not in trimmed["metadata"]["annotations"]
    assert marked["metadata"]["annotations"][ANNOTATION_PUSHED_BY_DIGEST] == "ns/app"
    assert marked_for("ns/app", _images(trimmed)) == frozenset()


def test_a_candidate_no_root_reaches_is_unreferenced() -> None:
    assert unreferenced([D["a"], D["b"]], {}, roots=[D["b"]]) == (D["a"],)


def test_a_candidate_an_index_above_it_keeps_at_any_depth() -> None:
    # c is a child of b, b a child of a; a stream names a.
    parents = {D["c"]: [D["b"]], D["b"]: [D["a"]]}
    assert unreferenced([D["c"], D["b"]], parents, roots=[D["a"]]) == ()
    assert unreferenced([D["c"]], parents, roots=[]) == (D["c"],)
    assert ancestors([D["c"]], parents) == {D["a"], D["b"], D["c"]}


def test_an_index_cycle_ends_where_it_repeats() -> None:
    parents = {D["a"]: [D["b"]], D["b"]: [D["a"]]}
    assert unreferenced([D["a"]], parents, roots=[]) == (D["a"],)
    assert unreferenced([D["a"]], parents, roots=[D["b"]]) == ()


def test_repository_images_follow_history_marks_and_children_at_any_depth() -> None:
    images = _images(
        _image(D["a"], children=(D["b"],)),
        _image(D["b"], children=(D["c"],)),
        _image(D["c"]),
        _image(D["d"], pushed_to="ns/app"),
        _image(D["e"], pushed_to="ns/other"),
    )
    stream = _stream("ns", "app", {"v1": [D["a"]]})
    marked = marked_for("ns/app", images)
    assert marked == {D["d"]}
    assert repository_images(stream, images, marked) == {D["a"], D["b"], D["c"], D["d"]}


def test_a_blob_is_held_by_the_images_the_repository_references() -> None:
    images = _images(
        _image(D["a"], children=(D["b"],)),
        _image(D["b"], layers=(D["h"],)),
        _image(D["c"], layers=(D["h"],)),  # another repository's
    )
    stream = _stream("ns", "app", {"v1": [D["a"]]})
    assert blob_holders(D["h"], stream, images, ()) == (D["b"],)
    assert blob_holders(D["g"], stream, images, ()) == ()
    assert blob_holders(D["h"], _stream("ns", "app", {}), images, ()) == ()
    assert blob_holders(D["h"], _stream("ns", "app", {}), images, [D["c"]]) == (D["c"],)


def test_a_child_only_an_index_records_names_that_index() -> None:
    images = _images(_image(D["a"], children=(D["b"],)), _image(D["b"], children=(D["c"],)))
    stream = _stream("ns", "app", {"v1": [D["a"]], "v2": [D["d"]]})
    assert holding_index(D["c"], stream, images, ()) == D["a"]
    assert holding_index(D["b"], stream, images, ()) == D["a"]
    assert holding_index(D["a"], stream, images, ()) is None
    assert holding_index(D["d"], stream, images, ()) is None
