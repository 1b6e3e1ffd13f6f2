"""Routes and errors of the OCI Distribution API as the front door reads them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdoor import distribution as d
from frontdoor.distribution import RegistryError, Route, mount_source, parse_route

DIGEST = "sha256:" + "ab" * 32
SHA512 = "sha512:" + "cd" * 64


def refusal(method: str, path: str) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        parse_route(method, path)
    return caught.value


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2/", Route("base", "GET")),
        ("HEAD", "/v2", Route("base", "HEAD")),
        ("GET", "/v2/_catalog", Route("catalog", "GET")),
        ("GET", f"/v2/team/app/blobs/{DIGEST}", Route("blob", "GET", "team", "app", DIGEST)),
        ("HEAD", f"/v2/team/app/blobs/{SHA512}", Route("blob", "HEAD", "team", "app", SHA512)),
        ("DELETE", f"/v2/team/app/blobs/{DIGEST}", Route("blob", "DELETE", "team", "app", DIGEST)),
        ("POST", "/v2/team/app/blobs/uploads/", Route("upload_start", "POST", "team", "app")),
        ("POST", "/v2/team/app/blobs/uploads", Route("upload_start", "POST", "team", "app")),
        (
            "PATCH",
            "/v2/t/a/blobs/uploads/0f-9A_b.c=",
            Route("upload", "PATCH", "t", "a", "0f-9A_b.c="),
        ),
        ("GET", "/v2/t/a/blobs/uploads/u1", Route("upload", "GET", "t", "a", "u1")),
        ("PUT", "/v2/t/a/blobs/uploads/u1", Route("upload", "PUT", "t", "a", "u1")),
        ("DELETE", "/v2/t/a/blobs/uploads/u1", Route("upload", "DELETE", "t", "a", "u1")),
        (
            "PUT",
            "/v2/t/my.app/manifests/v1.0_rc-1",
            Route("manifest", "PUT", "t", "my.app", "v1.0_rc-1"),
        ),
        ("GET", f"/v2/t/a/manifests/{DIGEST}", Route("manifest", "GET", "t", "a", DIGEST)),
        ("HEAD", "/v2/t/a/manifests/latest", Route("manifest", "HEAD", "t", "a", "latest")),
        ("DELETE", "/v2/t/a/manifests/latest", Route("manifest", "DELETE", "t", "a", "latest")),
        ("GET", "/v2/t/a/tags/list", Route("tags", "GET", "t", "a")),
        ("GET", f"/v2/t/a/referrers/{DIGEST}", Route("referrers", "GET", "t", "a", DIGEST)),
        # A name may be an endpoint's word: the shortest prefix leaving an endpoint is the name.
        ("GET", "/v2/t/blobs/manifests/latest", Route("manifest", "GET", "t", "blobs", "latest")),
        ("GET", "/v2/t/manifests/manifests/x", Route("manifest", "GET", "t", "manifests", "x")),
    ],
)
def test_routes_of_the_spec(method: str, path: str, expected: Route) -> None:
    assert parse_route(method, path) == expected


@pytest.mark.parametrize(
    ("method", "kind", "action"),
    [
        ("GET", "blob", "pull"),
        ("HEAD", "manifest", "pull"),
        ("GET", "tags", "pull"),
        ("GET", "referrers", "pull"),
        ("POST", "upload_start", "push"),
        ("PATCH", "upload", "push"),
        ("PUT", "manifest", "push"),
        ("DELETE", "blob", "delete"),
        ("DELETE", "manifest", "delete"),
        ("DELETE", "upload", "push"),  # cancelling an upload is part of a push
    ],
)
def test_reads_pull_writes_push_and_deletes_delete(
    method: str, kind: d.RouteKind, action: str
) -> None:
    route = Route(kind, method, "team", "app", None)
    assert route.action == action
    assert route.repository == "team/app"


@pytest.mark.parametrize("kind", ["base", "catalog"])
def test_base_and_catalog_belong_to_no_repository(kind: d.RouteKind) -> None:
    route = parse_route("GET", "/v2/" if kind == "base" else "/v2/_catalog")
    assert route.repository is None
    assert route.action is None


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/v2/app/manifests/latest", "exactly two path components, got 1"),
        ("/v2/a/b/c/manifests/latest", "exactly two path components, got 3"),
        ("/v2//manifests/latest", "exactly two path components, got 1"),
        ("/v2/Team/app/tags/list", "namespace 'Team' of repository 'Team/app' is not a valid"),
        ("/v2/-team/app/tags/list", "namespace '-team'"),
        ("/v2/" + "n" * 64 + "/app/tags/list", "at most 63 characters"),
        (
            "/v2/team/App/tags/list",
            "name 'App' of repository 'team/App' is not a valid ImageStream",
        ),
        ("/v2/team/a_b/tags/list", "name 'a_b'"),
        ("/v2/team/" + "a" * 254 + "/tags/list", "at most 253 characters"),
    ],
)
def test_bad_repository_names_say_which_and_why(path: str, says: str) -> None:
    error = refusal("GET", path)
    assert (error.status, error.code) == (400, "NAME_INVALID")
    assert says in error.message


def test_longest_valid_names_pass() -> None:
    namespace, name = "n" * 63, "a" * 253
    assert (
        parse_route("GET", f"/v2/{namespace}/{name}/tags/list").repository == f"{namespace}/{name}"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v2/team/app",
        "/v2/team/app/",
        "/v2/team/app/manifests/",
        "/v2/team/app/tags",
        "/v2/team/app/blobs/uploads/u1/extra",
        "/v2/team/app/unknown/x",
        "/v3/team/app/tags/list",
        "/",
        "/v2/_catalog/x",
    ],
)
def test_unknown_paths_are_404_name_unknown(path: str) -> None:
    error = refusal("GET", path)
    assert (error.status, error.code) == (404, "NAME_UNKNOWN")
    assert "is not an endpoint of the registry API" in error.message


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v2/", "GET, HEAD"),
        ("PUT", f"/v2/t/a/blobs/{DIGEST}", "GET, HEAD, DELETE"),
        ("GET", "/v2/t/a/blobs/uploads/", "POST"),
        ("POST", "/v2/t/a/blobs/uploads/u1", "GET, PATCH, PUT, DELETE"),
        ("PATCH", "/v2/t/a/manifests/latest", "GET, HEAD, PUT, DELETE"),
        ("DELETE", "/v2/t/a/tags/list", "GET"),
        ("HEAD", f"/v2/t/a/referrers/{DIGEST}", "GET"),
        ("POST", "/v2/_catalog", "GET"),
        ("get", "/v2/t/a/tags/list", "GET"),
    ],
)
def test_a_method_the_endpoint_lacks_is_405_with_allow(method: str, path: str, allow: str) -> None:
    error = refusal(method, path)
    assert (error.status, error.code) == (405, "UNSUPPORTED")
    assert error.headers == {"Allow": allow}
    assert allow in error.message


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "ab" * 31,  # one byte short
        "sha256:" + "AB" * 32,  # registered encodings are lowercase hex
        "sha512:" + "ab" * 32,  # a sha256's length under sha512
        "sha256",
        ":" + "ab" * 32,
        "SHA256:" + "ab" * 32,
        "sha256:" + "ab" * 32 + "\n",
    ],
)
@pytest.mark.parametrize("endpoint", ["blobs", "referrers"])
def test_bad_digests_in_paths_are_digest_invalid(digest: str, endpoint: str) -> None:
    error = refusal("GET", f"/v2/t/a/{endpoint}/{digest}")
    assert (error.status, error.code) == (400, "DIGEST_INVALID")
    assert "is not a valid digest" in error.message


def test_other_algorithms_keep_the_general_grammar() -> None:
    assert parse_route("GET", "/v2/t/a/blobs/blake3:abc=_-").reference == "blake3:abc=_-"


@pytest.mark.parametrize(
    "reference", ["-leading-dash", ".dot", "a" * 129, "tag+plus", "sha256:short"]
)
def test_bad_manifest_reference_is_invalid_on_push_and_unknown_on_read(reference: str) -> None:
    pushed = refusal("PUT", f"/v2/t/a/manifests/{reference}")
    assert (pushed.status, pushed.code) == (400, "MANIFEST_INVALID")
    assert "is neither a tag" in pushed.message
    read = refusal("GET", f"/v2/t/a/manifests/{reference}")
    assert (read.status, read.code) == (404, "MANIFEST_UNKNOWN")


def test_longest_tag_is_a_reference() -> None:
    assert parse_route("PUT", "/v2/t/a/manifests/" + "a" * 128).reference == "a" * 128


def test_bad_upload_id_is_upload_unknown() -> None:
    error = refusal("PATCH", "/v2/t/a/blobs/uploads/has space")
    assert (error.status, error.code) == (404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("upload", [".", ".."])
def test_an_upload_id_that_is_a_dot_segment_is_upload_unknown(upload: str) -> None:
    """An HTTP client resolves dot segments away: the registry would get another path."""
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        error = refusal(method, f"/v2/t/a/blobs/uploads/{upload}")
        assert (error.status, error.code) == (404, "BLOB_UPLOAD_UNKNOWN")
        assert error.message == f"{upload!r} is not an upload id"
    for other in ("...", ".a", "a..b", "..="):  # dots, but no dot segment: still ids
        assert parse_route("PATCH", f"/v2/t/a/blobs/uploads/{other}").reference == other


@pytest.mark.parametrize(
    ("method", "path", "forwarded"),
    [
        ("GET", "/v2", "/v2/"),
        ("GET", "/v2/", "/v2/"),
        ("GET", "/v2/_catalog", "/v2/_catalog"),
        ("HEAD", f"/v2/t/a/blobs/{DIGEST}", f"/v2/t/a/blobs/{DIGEST}"),
        ("POST", "/v2/t/a/blobs/uploads", "/v2/t/a/blobs/uploads/"),
        ("POST", "/v2/t/a/blobs/uploads/", "/v2/t/a/blobs/uploads/"),
        ("PATCH", "/v2/t/a/blobs/uploads/u.1=", "/v2/t/a/blobs/uploads/u.1="),
        ("PUT", "/v2/t/my.app/manifests/v1", "/v2/t/my.app/manifests/v1"),
        ("GET", "/v2/t/a/tags/list", "/v2/t/a/tags/list"),
        ("GET", f"/v2/t/a/referrers/{DIGEST}", f"/v2/t/a/referrers/{DIGEST}"),
    ],
)
def test_the_forwarded_path_is_built_from_the_checked_route(
    method: str, path: str, forwarded: str
) -> None:
    assert d.route_path(parse_route(method, path)) == forwarded


@given(path=st.text(max_size=200))
def test_a_forwarded_path_parses_back_to_the_route_it_came_from(path: str) -> None:
    try:
        route = parse_route("PATCH", "/v2/t/a/blobs/uploads/" + path)
    except RegistryError:
        return
    forwarded = d.route_path(route)
    assert parse_route("PATCH", forwarded) == route
    assert not {".", ".."} & set(forwarded.split("/"))


def test_the_endpoint_is_judged_before_the_name_and_the_name_before_the_method() -> None:
    assert refusal("POST", "/v2/A/b/nowhere").code == "NAME_UNKNOWN"
    assert refusal("POST", "/v2/A/b/tags/list").code == "NAME_INVALID"
    assert refusal("POST", f"/v2/a/b/blobs/{'x' * 3}").code == "UNSUPPORTED"


@given(method=st.text(max_size=8), path=st.text(max_size=300))
def test_any_request_line_gives_a_route_or_a_registry_error(method: str, path: str) -> None:
    for candidate in (path, "/v2/" + path):
        try:
            route = parse_route(method, candidate)
        except RegistryError as err:
            assert err.status in (400, 404, 405)
            json.loads(err.body())
        else:
            assert route.method in d.ALLOWED_METHODS[route.kind]


@given(
    namespace=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True),
    name=st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True),
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_every_valid_tag_push_parses(namespace: str, name: str, tag: str) -> None:
    if ".." in name or ".-" in name or "-." in name:
        return  # not a DNS subdomain: each dot-separated label must start and end alnum
    route = parse_route("PUT", f"/v2/{namespace}/{name}/manifests/{tag}")
    assert (route.kind, route.repository, route.reference) == (
        "manifest",
        f"{namespace}/{name}",
        tag,
    )


# --- what the front door does not offer -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "says"),
    [
        ("GET", "/v2/_catalog", "catalog is not offered"),
    ],
)
def test_not_offered_is_405_saying_why(method: str, path: str, says: str) -> None:
    with pytest.raises(RegistryError) as caught:
        d.require_offered(parse_route(method, path))
    assert (caught.value.status, caught.value.code) == (405, "UNSUPPORTED")
    assert says in caught.value.message


def test_the_referrers_api_is_not_offered_with_the_404_clients_fall_back_on() -> None:
    """A 404 makes a client use the referrers tag schema (spec.md, Unavailable Referrers
    API), a tag the front door judges; the registry's own list is never forwarded."""
    with pytest.raises(RegistryError) as caught:
        d.require_offered(parse_route("GET", f"/v2/t/a/referrers/{DIGEST}"))
    assert (caught.value.status, caught.value.code) == (404, "UNSUPPORTED")
    assert caught.value.message.startswith("the referrers API is not offered")
    assert "referrers tag schema" in caught.value.message


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v2/t/a/blobs/uploads/u1"),  # cancelling an upload is part of a push
        ("DELETE", "/v2/t/a/manifests/latest"),  # content management (end-9, end-10)
        ("DELETE", f"/v2/t/a/blobs/{DIGEST}"),
        ("GET", f"/v2/t/a/blobs/{DIGEST}"),
        ("PUT", "/v2/t/a/manifests/latest"),
        ("GET", "/v2/"),
    ],
)
def test_everything_else_is_offered(method: str, path: str) -> None:
    d.require_offered(parse_route(method, path))


# --- mounts -------------------------------------------------------------------------------


def test_mount_source_names_digest_and_repository() -> None:
    assert mount_source({"mount": DIGEST, "from": "other/base"}) == (DIGEST, "other/base")


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"mount": DIGEST},
        {"from": "other/base"},
        {"mount": "sha256:nothex", "from": "other/base"},
        {"mount": DIGEST, "from": "library/ubuntu/extra"},
        {"mount": DIGEST, "from": "Other/base"},
        {"mount": DIGEST, "from": ""},
    ],
)
def test_absent_or_malformed_mount_is_none(query: dict[str, str]) -> None:
    assert mount_source(query) is None


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (d.name_invalid("m"), 400, "NAME_INVALID"),
        (d.name_unknown("m"), 404, "NAME_UNKNOWN"),
        (d.manifest_invalid("m"), 400, "MANIFEST_INVALID"),
        (d.manifest_unknown("m"), 404, "MANIFEST_UNKNOWN"),
        (d.digest_invalid("m"), 400, "DIGEST_INVALID"),
        (d.manifest_blob_unknown(DIGEST), 400, "MANIFEST_BLOB_UNKNOWN"),
        (d.blob_unknown("m"), 404, "BLOB_UNKNOWN"),
        (d.blob_upload_unknown("m"), 404, "BLOB_UPLOAD_UNKNOWN"),
        (d.size_invalid("m"), 400, "SIZE_INVALID"),
        (d.range_invalid("m"), 416, "BLOB_UPLOAD_INVALID"),
        (d.unauthorized("m"), 401, "UNAUTHORIZED"),
        (d.denied("m"), 403, "DENIED"),
        (d.unsupported("m"), 405, "UNSUPPORTED"),
        (d.too_many_requests("m"), 429, "TOOMANYREQUESTS"),
    ],
)
def test_each_code_has_the_spec_status(error: RegistryError, status: int, code: str) -> None:
    assert (error.status, error.code) == (status, code)
    assert json.loads(error.body())["errors"][0]["code"] == code


def test_body_is_the_spec_error_format() -> None:
    error = RegistryError("DENIED", "image exceeds the limit", detail={"limit": "1Gi"})
    assert error.body() == (
        b'{"errors":[{"code":"DENIED","message":"image exceeds the limit",'
        b'"detail":{"limit":"1Gi"}}]}'
    )


def test_body_leaves_out_an_absent_detail() -> None:
    assert json.loads(d.denied("no").body()) == {"errors": [{"code": "DENIED", "message": "no"}]}


def test_body_is_ascii_whatever_the_message() -> None:
    body = d.name_invalid("bad \udc80 name ü").body()
    assert body.isascii()
    assert json.loads(body)["errors"][0]["message"] == "bad \udc80 name ü"


def test_headers_the_answer_must_carry() -> None:
    assert d.unauthorized("log in", 'Basic realm="registry"').headers == {
        "WWW-Authenticate": 'Basic realm="registry"'
    }
    assert d.unauthorized("log in").headers == {}
    assert d.too_many_requests("slow down", 3).headers == {"Retry-After": "3"}
    assert d.unsupported("no", ("GET",)).headers == {"Allow": "GET"}


def test_echoed_input_is_cut_short() -> None:
    error = refusal("GET", "/v2/" + "X" * 10_000 + "/app/tags/list")
    assert len(error.message) < 400


_NAMESPACE_RULE = (
    "lowercase letters, digits and '-', starting and ending with a letter or digit,"
    " at most 63 characters"
)
_NAME_RULE = (
    "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit,"
    " at most 253 characters"
)
_TAG_RULE = "is neither a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) nor a digest"


@pytest.mark.parametrize(
    ("method", "path", "code", "message"),
    [
        ("GET", "/v3/x", "NAME_UNKNOWN", "'/v3/x' is not an endpoint of the registry API"),
        (
            "GET",
            "/v2/a/b/nothing",
            "NAME_UNKNOWN",
            "'/v2/a/b/nothing' is not an endpoint of the registry API",
        ),
        (
            "GET",
            "/v2/a/b/c/tags/list",
            "NAME_INVALID",
            "repository 'a/b/c' must be <namespace>/<name>: exactly two path components, got 3",
        ),
        (
            "GET",
            "/v2/Bad/app/tags/list",
            "NAME_INVALID",
            "namespace 'Bad' of repository 'Bad/app' is not a valid namespace name: "
            + _NAMESPACE_RULE,
        ),
        (
            "GET",
            "/v2/a/Bad/tags/list",
            "NAME_INVALID",
            f"name 'Bad' of repository 'a/Bad' is not a valid ImageStream name: {_NAME_RULE}",
        ),
        (
            "PATCH",
            "/v2/a/b/blobs/uploads/bad!id",
            "BLOB_UPLOAD_UNKNOWN",
            "'bad!id' is not an upload id",
        ),
        ("GET", "/v2/a/b/manifests/!bad", "MANIFEST_UNKNOWN", f"'!bad' {_TAG_RULE}"),
        ("PUT", "/v2/a/b/manifests/!bad", "MANIFEST_INVALID", f"'!bad' {_TAG_RULE}"),
        ("GET", "/v2/a/b/blobs/notadigest", "DIGEST_INVALID", "'notadigest' is not a valid digest"),
        (
            "POST",
            "/v2/a/b/tags/list",
            "UNSUPPORTED",
            "'POST' is not a method of this endpoint: GET",
        ),
    ],
)
def test_each_refused_route_says_exactly_what_is_wrong(
    method: str, path: str, code: str, message: str
) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_route(method, path)
    assert (raised.value.code, raised.value.message) == (code, message)
    assert str(raised.value) == f"{code}: {message}"


def test_the_base_answers_without_its_trailing_slash() -> None:
    assert parse_route("GET", "/v2") == Route("base", "GET")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            Route("catalog", "GET"),
            "the repository catalog is not offered: it would list repositories in namespaces"
            " the caller cannot read; list ImageStreams with kubectl instead",
        ),
    ],
)
def test_what_is_not_offered_says_what_to_do_instead(route: Route, message: str) -> None:
    with pytest.raises(RegistryError) as raised:
        d.require_offered(route)
    assert (raised.value.code, raised.value.message, raised.value.headers) == (
        "UNSUPPORTED",
        message,
        {},
    )


def test_a_missing_manifest_blob_names_its_digest_in_message_and_detail() -> None:
    digest = "sha256:" + "a" * 64
    assert json.loads(d.manifest_blob_unknown(digest).body()) == {
        "errors": [
            {
                "code": "MANIFEST_BLOB_UNKNOWN",
                "message": f"the manifest references '{digest}', which this repository does"
                " not have",
                "detail": {"digest": digest},
            }
        ]
    }


def test_the_error_helpers_keep_their_message_and_status() -> None:
    for make, status in [
        (d.blob_unknown, 404),
        (d.blob_upload_unknown, 404),
        (d.size_invalid, 400),
        (d.manifest_unknown, 404),
        (d.unauthorized, 401),
        (d.too_many_requests, 429),
    ]:
        err = make("why")
        assert (err.status, err.message) == (status, "why")
    assert d.unavailable("why", 2).message == "why"


def test_retry_after_is_sent_only_when_known() -> None:
    assert d.too_many_requests("why").headers == {}
    assert d.unavailable("why", 2).headers["Retry-After"] == "2"
