from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from kube import apierrors


def api_error(
    code: int, status: dict[str, object] | None = None, body: str | None = None
) -> ApiException:
    err = ApiException(status=code, reason="reason phrase")
    err.body = json.dumps({"kind": "Status", "code": code, **status}) if status else body
    return err


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (api_error(409, {"reason": "AlreadyExists"}), apierrors.ALREADY_EXISTS),
        (api_error(409, {"reason": "Conflict"}), apierrors.CONFLICT),
        (api_error(409, body="plain text from a proxy"), apierrors.CONFLICT),
        (api_error(404, body=None), apierrors.NOT_FOUND),
        (api_error(410, {"reason": "Expired"}), apierrors.EXPIRED),
        (api_error(500, {"reason": "InternalError"}), "InternalError"),
        (api_error(500, body="oops"), None),
        (ValueError("not an API error"), None),
    ],
)
def test_the_reason_is_the_bodys_and_the_code_only_stands_in_for_a_missing_one(
    err: BaseException, reason: str | None
) -> None:
    assert apierrors.reason(err) == reason


def test_a_create_that_lost_a_race_is_not_a_stale_update() -> None:
    exists = api_error(409, {"reason": "AlreadyExists"})
    assert apierrors.is_already_exists(exists)
    assert not apierrors.is_conflict(exists)


def test_a_stale_update_is_a_conflict_not_an_existing_object() -> None:
    stale = api_error(409, {"reason": "Conflict"})
    assert apierrors.is_conflict(stale)
    assert not apierrors.is_already_exists(stale)


def test_a_terminating_namespace_is_told_apart_from_rbac() -> None:
    terminating = api_error(
        403,
        {
            "reason": "Forbidden",
            "details": {
                "causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]
            },
        },
    )
    denied = api_error(403, {"reason": "Forbidden", "details": {"kind": "secrets"}})
    assert apierrors.is_namespace_terminating(terminating)
    assert apierrors.is_forbidden(denied)
    assert not apierrors.is_namespace_terminating(denied)


def test_causes_read_the_type_from_its_json_name_reason() -> None:
    """metav1.StatusCause.Type has the JSON tag ``reason``; odd entries are skipped, odd
    fields are empty."""
    err = api_error(
        422,
        {
            "reason": "Invalid",
            "details": {
                "causes": [
                    {"reason": "FieldValueInvalid", "message": "bad", "field": "spec.tags"},
                    "not an object",
                    {"reason": 7, "message": None},
                ]
            },
        },
    )
    assert apierrors.causes(err) == [
        apierrors.StatusCause("FieldValueInvalid", "bad", "spec.tags"),
        apierrors.StatusCause(""),
    ]


@pytest.mark.parametrize(
    "err",
    [
        api_error(403, {"reason": "Forbidden"}),
        api_error(403, {"reason": "Forbidden", "details": {"causes": "x"}}),
        api_error(403, body="plain text from a proxy"),
        ValueError("not an API error"),
    ],
)
def test_an_error_without_causes_has_none(err: BaseException) -> None:
    assert apierrors.causes(err) == []


def test_a_not_found_names_the_object_only_when_storage_filled_the_details() -> None:
    stored = api_error(
        404, {"reason": "NotFound", "details": {"name": "app", "kind": "imagestreams"}}
    )
    unserved = api_error(404, {"reason": "NotFound", "details": {}})
    assert apierrors.names_object(stored, "app", "imagestreams")
    assert not apierrors.names_object(stored, "other", "imagestreams")
    assert not apierrors.names_object(unserved, "app", "imagestreams")


def test_a_not_found_can_be_held_to_the_objects_api_group() -> None:
    stored = api_error(
        404,
        {
            "reason": "NotFound",
            "details": {"name": "app", "group": "image.alauda.io", "kind": "imagestreams"},
        },
    )
    core = api_error(404, {"reason": "NotFound", "details": {"name": "app", "kind": "secrets"}})
    assert apierrors.names_object(stored, "app", "imagestreams", group="image.alauda.io")
    assert not apierrors.names_object(stored, "app", "imagestreams", group="other.io")
    assert apierrors.names_object(core, "app", "secrets", group="")  # the core group is ""


def test_gone_covers_both_reasons_of_a_too_old_resource_version() -> None:
    assert apierrors.is_gone(api_error(410, {"reason": "Expired"}))
    assert apierrors.is_gone(api_error(410, {"reason": "Gone"}))
    assert not apierrors.is_gone(api_error(404, {"reason": "NotFound"}))


@pytest.mark.parametrize(
    ("status", "gone"),
    [
        ({"kind": "Status", "code": 410, "reason": "Expired"}, True),
        ({"kind": "Status", "code": 410}, True),  # no reason: the code stands in
        ({"kind": "Status", "code": 500, "reason": "InternalError"}, False),
        ({}, False),
    ],
)
def test_a_watch_error_event_is_read_like_an_error(status: dict[str, object], gone: bool) -> None:
    assert apierrors.status_is_gone(status) is gone
