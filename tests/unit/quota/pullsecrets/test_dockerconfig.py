import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.pullsecrets.dockerconfig import (
    EMPTY_DOCKERCONFIGJSON,
    DockerConfig,
    DockerConfigError,
    build_dockerconfigjson,
    decode_secret_value,
    desired_hostnames,
    internal_hostnames,
    parse_dockerconfigjson,
    route_hostnames,
    unique_hostnames,
)
from quota.pullsecrets.names import DEFAULT_INTERNAL_HOSTNAMES

TOKEN = "tok-SENSITIVE-123"
INTERNAL = list(DEFAULT_INTERNAL_HOSTNAMES)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_build_shape() -> None:
    doc = json.loads(build_dockerconfigjson(["r.example:5000", "a.example"], TOKEN))
    entry = {
        "username": "serviceaccount",
        "password": TOKEN,
        "auth": b64(f"serviceaccount:{TOKEN}"),
    }
    assert doc == {"auths": {"r.example:5000": entry, "a.example": entry}}


def test_build_is_canonical_and_order_independent() -> None:
    one = build_dockerconfigjson(["b", "a", "c"], TOKEN)
    two = build_dockerconfigjson(["c", "a", "b", "a"], TOKEN)
    assert one == two
    assert list(json.loads(one)["auths"]) == ["a", "b", "c"]
    assert b" " not in one and b"\n" not in one


def test_build_deduplicates_and_strips_hostnames() -> None:
    doc = json.loads(build_dockerconfigjson(["a", " a ", "", "b"], TOKEN))
    assert sorted(doc["auths"]) == ["a", "b"]


@pytest.mark.parametrize(("hosts", "token"), [([], TOKEN), (["", "  "], TOKEN), (["a"], "")])
def test_build_rejects_empty_input(hosts: list[str], token: str) -> None:
    with pytest.raises(ValueError):
        build_dockerconfigjson(hosts, token)


def test_parse_round_trip_bytes_and_str() -> None:
    payload = build_dockerconfigjson(["x", "y"], TOKEN)
    for value in (payload, payload.decode()):
        parsed = parse_dockerconfigjson(value)
        assert set(parsed.hostnames) == {"x", "y"}
        assert parsed.token == TOKEN


def test_docker_config_repr_hides_token() -> None:
    parsed = parse_dockerconfigjson(build_dockerconfigjson(["x"], TOKEN))
    assert TOKEN not in repr(parsed)
    assert "x" in repr(parsed)


def _entry(password: str = TOKEN, **override: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "username": "serviceaccount",
        "password": password,
        "auth": b64(f"serviceaccount:{password}"),
    }
    entry.update(override)
    return entry


GARBAGE = {
    "not utf-8": b"\xff\xfe\x00",
    "not json": b"{auths",
    "empty": b"",
    "json list": b"[]",
    "json null": b"null",
    "no auths": b"{}",
    "auths null": b'{"auths": null}',
    "auths list": b'{"auths": []}',
    "auths empty": EMPTY_DOCKERCONFIGJSON,
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "entry not object": json.dumps({"auths": {"h": "x"}}).encode(),
    "empty hostname": json.dumps({"auths": {" ": _entry()}}).encode(),
    "other username": json.dumps({"auths": {"h": _entry(username="bob")}}).encode(),
    "no password": json.dumps({"auths": {"h": _entry(password="")}}).encode(),
    "password not str": json.dumps({"auths": {"h": _entry() | {"password": 5}}}).encode(),
    "auth missing": json.dumps(
        {"auths": {"h": {"username": "serviceaccount", "password": TOKEN}}}
    ).encode(),
    "auth mismatch": json.dumps(
        {"auths": {"h": _entry(auth=b64("serviceaccount:other"))}}
    ).encode(),
    "tokens differ": json.dumps({"auths": {"h": _entry(), "i": _entry("other-token")}}).encode(),
}


NOT_JSON = "payload is not UTF-8 JSON"
NO_AUTHS = "payload has no auths entries"
GARBAGE_ERRORS = {
    "not utf-8": NOT_JSON,
    "not json": NOT_JSON,
    "empty": NOT_JSON,
    "json list": NO_AUTHS,
    "json null": NO_AUTHS,
    "no auths": NO_AUTHS,
    "auths null": NO_AUTHS,
    "auths list": NO_AUTHS,
    "auths empty": NO_AUTHS,
    "deep nesting": NOT_JSON,
    "entry not object": "auths entry is not for the serviceaccount user",
    "empty hostname": "auths has an empty hostname",
    "other username": "auths entry is not for the serviceaccount user",
    "no password": "auths entry has no password",
    "password not str": "auths entry has no password",
    "auth missing": "auths entry has an inconsistent auth field",
    "auth mismatch": "auths entry has an inconsistent auth field",
    "tokens differ": "auths entries carry different tokens",
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_parse_rejects_garbage_with_specific_error(case: str) -> None:
    with pytest.raises(DockerConfigError) as info:
        parse_dockerconfigjson(GARBAGE[case])
    assert str(info.value) == GARBAGE_ERRORS[case]
    assert TOKEN not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_text_payload_is_read_like_bytes() -> None:
    payload = build_dockerconfigjson(["h"], TOKEN)
    assert parse_dockerconfigjson(payload.decode()) == parse_dockerconfigjson(payload)


@pytest.mark.parametrize(
    ("hosts", "token", "error"),
    [
        ([], TOKEN, "at least one registry hostname is required"),
        (["h"], "", "token must not be empty"),
    ],
)
def test_build_refuses_what_no_registry_could_use(hosts: list[str], token: str, error: str) -> None:
    with pytest.raises(ValueError, match=f"^{error}$"):
        build_dockerconfigjson(hosts, token)


@pytest.mark.parametrize("value", ["!!!!", "YWJj!", "YWJ"])
def test_secret_values_must_be_strict_base64(value: str) -> None:
    assert decode_secret_value(value) is None


def test_a_service_address_without_a_port_gets_its_cluster_local_form() -> None:
    assert internal_hostnames("reg.sys.svc") == ("reg.sys.svc", "reg.sys.svc.cluster.local")


def test_decode_secret_value() -> None:
    assert decode_secret_value(b64("hello")) == b"hello"
    assert decode_secret_value("not base64!") is None
    assert decode_secret_value("abc") is None  # bad padding
    assert decode_secret_value(None) is None
    assert decode_secret_value(123) is None


hostnames_st = st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=6)
token_st = st.text(min_size=1, max_size=200)


@given(hostnames_st, token_st)
def test_property_round_trip(hosts: list[str], token: str) -> None:
    parsed = parse_dockerconfigjson(build_dockerconfigjson(hosts, token))
    assert parsed == DockerConfig(tuple(sorted({h.strip() for h in hosts})), token)


@given(st.binary(max_size=200))
def test_property_parse_never_raises_anything_else(payload: bytes) -> None:
    with contextlib.suppress(DockerConfigError):
        parse_dockerconfigjson(payload)


def test_unique_hostnames_keeps_first_seen_order() -> None:
    assert unique_hostnames(["b", "a", None, 3, "b", " ", " c "]) == ["b", "a", "c"]


def test_desired_hostnames_without_config() -> None:
    assert desired_hostnames() == INTERNAL
    assert desired_hostnames(None, ["extra.example"]) == [*INTERNAL, "extra.example"]


def test_desired_hostnames_with_routes_and_duplicates() -> None:
    config = {
        "spec": {
            "routes": [
                {"hostname": "route.example"},
                {"hostname": INTERNAL[0]},
                {"hostname": "extra.example"},
                {"name": "no-hostname"},
                {"hostname": ""},
                {"hostname": 42},
                "not-a-dict",
                None,
                {"hostname": "second.example"},
            ]
        }
    }
    assert desired_hostnames(config, ["extra.example", " extra.example "]) == [
        *INTERNAL,
        "extra.example",
        "route.example",
        "second.example",
    ]


@pytest.mark.parametrize(
    "config",
    [
        None,
        "string",
        [],
        {},
        {"spec": None},
        {"spec": "x"},
        {"spec": {}},
        {"spec": {"routes": None}},
        {"spec": {"routes": {"hostname": "a"}}},
        {"spec": {"routes": []}},
    ],
)
def test_malformed_config_contributes_nothing(config: object) -> None:
    assert route_hostnames(config) == []
    assert desired_hostnames(config) == INTERNAL


def test_custom_internal_hostnames() -> None:
    assert desired_hostnames(None, ["b"], internal_hostnames=["a", "b"]) == ["a", "b"]


def test_internal_hostnames_include_the_cluster_local_form() -> None:
    assert internal_hostnames("reg.sys.svc:5000") == (
        "reg.sys.svc:5000",
        "reg.sys.svc.cluster.local:5000",
    )
    assert internal_hostnames("registry.example.com") == ("registry.example.com",)


CORRUPTIONS: dict[str, Any] = {
    "another username": lambda doc, host: doc["auths"][host].update(username="admin"),
    "no auth field": lambda doc, host: doc["auths"][host].pop("auth"),
    "auth of another password": lambda doc, host: doc["auths"][host].update(
        auth=base64.b64encode(b"serviceaccount:other").decode()
    ),
    "empty password": lambda doc, host: doc["auths"][host].update(password="", auth=""),
    "password not a string": lambda doc, host: doc["auths"][host].update(password=7),
    "entry not an object": lambda doc, host: doc["auths"].update({host: "token"}),
    "blank hostname": lambda doc, host: doc["auths"].update({" ": doc["auths"][host]}),
    "two tokens": lambda doc, host: doc["auths"].update(
        {
            "other.example.com": {
                "username": "serviceaccount",
                "password": "t2",
                "auth": base64.b64encode(b"serviceaccount:t2").decode(),
            }
        }
    ),
    "no auths": lambda doc, host: doc.pop("auths"),
    "auths empty": lambda doc, host: doc.update(auths={}),
    "auths a list": lambda doc, host: doc.update(auths=[doc["auths"]]),
}


@given(
    hostnames_st,
    token_st,
    st.sampled_from([None, *sorted(CORRUPTIONS)]),
    st.data(),
)
def test_property_a_valid_payload_with_one_wrong_part_is_refused(
    hosts: list[str], token: str, corruption: str | None, data: st.DataObject
) -> None:
    """Built payloads parse back; each kind of damage to one part is refused, and only that."""
    doc = json.loads(build_dockerconfigjson(hosts, token))
    if corruption is not None:
        host = data.draw(st.sampled_from(sorted(doc["auths"])), label="host")
        CORRUPTIONS[corruption](doc, host)
    payload = json.dumps(doc).encode()
    if corruption is None:
        assert parse_dockerconfigjson(payload) == DockerConfig(
            tuple(sorted({h.strip() for h in hosts})), token
        )
    else:
        with pytest.raises(DockerConfigError):
            parse_dockerconfigjson(payload)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_payload_in_another_unicode_encoding_is_refused(encoding: str) -> None:
    """json.loads would read UTF-16 and UTF-32 bytes; Kubernetes writes UTF-8 only."""
    payload = build_dockerconfigjson(["h"], TOKEN).decode().encode(encoding)
    with pytest.raises(DockerConfigError, match=r"^payload is not UTF-8 JSON$"):
        parse_dockerconfigjson(payload)
