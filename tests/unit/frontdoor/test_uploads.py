"""Blob uploads: started only where a push could follow, bounded while they stream."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

import pytest

from frontdoor.distribution import RegistryError, Route
from frontdoor.pushes import PushDenied
from frontdoor.readonly import READ_ONLY_MESSAGE
from frontdoor.uploads import Uploads, bounded, too_large
from frontdoor.upstream import UpstreamResponse
from quota.decision import Cause, Decision
from quota.limits import Limit

LIMIT = Limit(Decimal(1000), "image-limits")
START = Route("upload_start", "POST", "team-a", "app")
QUOTA_FULL = "exceeded quota: images, requested: alauda.io/imagestreams=1, used: ..."


def upload(method: str) -> Route:
    return Route("upload", method, "team-a", "app", "u1")


class Rules:
    def __init__(self, limit: Limit | None = LIMIT, room: Decision | None = None) -> None:
        self.limit = limit
        self.room = room or Decision.allow()
        self.asked: list[tuple[str, str]] = []

    def upload_room(self, namespace: str, repository: str) -> Decision:
        self.asked.append((namespace, repository))
        return self.room

    def largest_image(self, namespace: str) -> Limit | None:
        assert namespace == "team-a"
        return self.limit


class Registry:
    """Answers an upload's status with the ``Range`` a distribution registry gives."""

    def __init__(self, held: str | None = "0-0", status: int = 204) -> None:
        self.held = held
        self.status = status
        self.asked: list[tuple[str, str]] = []

    def request(
        self, method: str, path_and_query: str, headers: Mapping[str, str]
    ) -> UpstreamResponse:
        self.asked.append((method, path_and_query))
        assert dict(headers) == {}  # a status GET passes nothing of the client's on
        headers_out = [("Range", self.held)] if self.held is not None else []
        return UpstreamResponse(self.status, headers_out, iter([]), 0)


def chunks(*sizes: int) -> Iterator[bytes]:
    return iter([b"x" * size for size in sizes])


def test_bounded_passes_chunks_up_to_the_limit_exactly() -> None:
    assert b"".join(bounded(chunks(400, 400, 200), 0, LIMIT, "app")) == b"x" * 1000


def test_bounded_stops_before_the_chunk_that_would_pass_the_limit() -> None:
    passed: list[bytes] = []
    with pytest.raises(PushDenied) as denied:
        for chunk in bounded(chunks(400, 400, 201, 5), 0, LIMIT, "app"):
            passed.append(chunk)
    assert sum(map(len, passed)) == 800
    assert denied.value.decision == Decision.deny(
        too_large("app", 1001, LIMIT), Cause.IMAGE_STORAGE_LIMIT
    )
    assert not denied.value.decision.retryable


def test_bounded_counts_from_the_sessions_offset() -> None:
    with pytest.raises(PushDenied, match=r"\(1001 > 1000\)"):
        list(bounded(chunks(101), 900, LIMIT, "app"))


def test_the_message_is_the_contracts_storage_limit_message() -> None:
    assert too_large("app", 3 * 2**20, Limit(Decimal(2**20), "lr")) == (
        'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit'
        ' per alauda.io/Image (3Mi > 1Mi) set by LimitRange "lr"'
    )


def test_an_upload_starts_where_the_rules_find_room() -> None:
    rules = Rules()
    Uploads(rules, Registry()).admit_start(START)
    assert rules.asked == [("team-a", "app")]


@pytest.mark.parametrize("cause", [Cause.QUOTA_EXCEEDED, Cause.NOT_READY])
def test_an_upload_without_room_is_denied_with_the_quotas_decision(cause: Cause) -> None:
    rules = Rules(room=Decision.deny(QUOTA_FULL, cause))
    with pytest.raises(PushDenied) as denied:
        Uploads(rules, Registry()).admit_start(START)
    assert denied.value.decision == rules.room


def test_without_a_limit_the_body_is_passed_as_it_is_and_nothing_asked() -> None:
    registry = Registry()
    body = chunks(5000)
    assert Uploads(Rules(limit=None), registry).bound(upload("PUT"), "", None, body, None) is body
    assert registry.asked == []


def test_a_post_starts_a_session_at_zero() -> None:
    registry = Registry(held="0-4999")
    bound = Uploads(Rules(), registry).bound(START, "digest=x", None, chunks(1000), 1000)
    assert b"".join(bound) == b"x" * 1000 and registry.asked == []


def test_a_patch_with_range_and_length_starts_where_its_range_says() -> None:
    registry = Registry()
    uploads = Uploads(Rules(), registry)
    assert b"".join(uploads.bound(upload("PATCH"), "", "900-999", chunks(100), 100))
    with pytest.raises(PushDenied, match=r"\(1001 > 1000\)"):
        uploads.bound(upload("PATCH"), "", "901-1000", chunks(100), 100)
    assert registry.asked == []


@pytest.mark.parametrize(
    ("method", "content_range", "length"),
    [
        ("PATCH", None, None),
        ("PATCH", "900-999", None),
        ("PATCH", "1" * 5000 + "-1", None),  # no length: distribution reads no range
        ("PUT", None, 100),
        ("PUT", None, None),
    ],
)
def test_otherwise_the_registry_is_asked_where_the_session_stands(
    method: str, content_range: str | None, length: int | None
) -> None:
    """A chunked PATCH's range is not checked by distribution, and a PUT has none."""
    registry = Registry(held="0-899")
    uploads = Uploads(Rules(), registry)
    with pytest.raises(PushDenied, match=r"\(1001 > 1000\)"):
        list(uploads.bound(upload(method), "_state=s&digest=d", content_range, chunks(101), length))
    assert registry.asked == [("GET", "/v2/team-a/app/blobs/uploads/u1?_state=s&digest=d")]


@pytest.mark.parametrize(
    ("held", "status", "room"),
    [
        ("0-0", 204, 1000),
        ("0-1", 204, 998),
        ("0-99", 204, 900),
        ("0-99", 300, 1000),
        ("0-99", 404, 1000),
        (None, 204, 1000),
    ],
)
def test_the_sessions_size_is_read_from_its_range(held: str | None, status: int, room: int) -> None:
    """``0-0`` is no byte (or one); an unknown session is the registry's to refuse."""
    uploads = Uploads(Rules(), Registry(held=held, status=status))
    assert b"".join(uploads.bound(upload("PATCH"), "", None, chunks(room), None)) == b"x" * room
    with pytest.raises(PushDenied):
        list(uploads.bound(upload("PATCH"), "", None, chunks(room + 1), None))


def test_a_status_asked_without_a_query_carries_none() -> None:
    registry = Registry(held="0-99")
    list(Uploads(Rules(), registry).bound(upload("PUT"), "", None, chunks(10), None))
    assert registry.asked == [("GET", "/v2/team-a/app/blobs/uploads/u1")]


def test_an_empty_body_is_never_bounded() -> None:
    registry = Registry(held="0-4999")
    body = chunks()
    assert Uploads(Rules(), registry).bound(upload("PUT"), "", None, body, 0) is body
    assert registry.asked == []


def test_a_body_cut_while_it_streams_is_refused_with_the_streams_name() -> None:
    """No Content-Length: the bound is found mid-stream, and the message is the same
    contract message as for a declared length, naming the ImageStream."""
    uploads = Uploads(Rules(), Registry(held="0-899"))
    with pytest.raises(PushDenied) as refused:
        list(uploads.bound(upload("PATCH"), "", None, chunks(101), None))
    assert str(refused.value) == too_large("app", 1001, LIMIT)


def test_a_final_put_while_read_only_is_refused_before_anything_is_sent() -> None:
    uploads = Uploads(Rules(), Registry(), read_only=lambda: True)
    with pytest.raises(RegistryError, match=READ_ONLY_MESSAGE):
        uploads.committing(upload("PUT"), chunks(10))


def test_a_switch_set_while_a_final_put_streams_withholds_its_last_chunk() -> None:
    switch = {"set": False}
    sent: list[bytes] = []

    def streamed() -> Iterator[bytes]:
        yield b"a" * 10
        switch["set"] = True  # the collection begins while the body streams
        yield b"b" * 10

    body = Uploads(Rules(), Registry(), read_only=lambda: switch["set"]).committing(
        upload("PUT"), streamed()
    )
    with pytest.raises(RegistryError, match=READ_ONLY_MESSAGE):
        sent.extend(body)
    assert sent == [b"a" * 10]  # the registry never has the whole blob


def test_a_final_put_passes_every_chunk_while_the_registry_is_writable() -> None:
    body = Uploads(Rules(), Registry()).committing(upload("PUT"), chunks(3, 0, 4))
    assert list(body) == [b"xxx", b"", b"xxxx"]


def test_only_the_final_put_is_held_back() -> None:
    body = chunks(3)
    assert (
        Uploads(Rules(), Registry(), read_only=lambda: True).committing(upload("PATCH"), body)
        is body
    )
