"""``docs/openapi.yaml`` is a valid OpenAPI document and lists exactly the app's routes.

The fuzzers generate requests from it and judge answers by it, so a route the app serves
but the document omits would never be fuzzed, and a documented route the app dropped would
only fail later; this test makes either drift fail at once.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from quota.decision import Cause, Decision
from tests.fuzz.fakes import fake_app
from tests.fuzz.openapi import load, resolve
from webhook.admission.review import parse_review, render_response

# Flask adds these to every route by itself; the document describes only what we wrote.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def app_routes() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route the assembled app serves."""
    routes = set()
    for rule in fake_app().url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes |= {(method, path) for method in (rule.methods or set()) - IMPLICIT_METHODS}
    return routes


def document_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_document_is_valid_openapi() -> None:
    validate(load())


def test_the_document_lists_exactly_the_routes_the_app_serves() -> None:
    assert document_routes(load()) == app_routes()


def test_the_route_check_sees_a_missing_route() -> None:
    """The comparison above can fail: drop one documented route and it differs."""
    document = load()
    del document["paths"]["/v1/pushreviews"]
    assert document_routes(document) != app_routes()


def test_every_answer_has_a_schema() -> None:
    """Schemathesis checks a body only against a schema the document gives."""
    document = load()
    missing = [
        (method, path, status, media)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status, response in operation["responses"].items()
        for media, content in resolve(document, response).get("content", {"-": {}}).items()
        if "schema" not in content
    ]
    assert missing == []


@pytest.mark.parametrize("cause", list(Cause))
def test_a_denial_the_server_renders_fits_the_documented_answer(cause: Cause) -> None:
    """The answer the admission paths build, checked against ``AdmissionReviewAnswer``:
    a denial's ``details.causes`` (the rule, for the front door) is documented too."""
    document = load()
    request = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "image.alauda.io", "version": "v1", "kind": "ImageStream"},
            "resource": {"group": "image.alauda.io", "version": "v1", "resource": "imagestreams"},
            "operation": "CREATE",
            "namespace": "team-a",
            "name": "app",
            "object": {"metadata": {"name": "app"}},
            "userInfo": {"username": "alice"},
        },
    }
    decision = Decision.deny("denied", cause)
    answer = render_response(
        parse_review(json.dumps(request).encode(), "application/json"), decision, mutating=False
    )
    schema = {"$ref": "#/components/schemas/AdmissionReviewAnswer", **document}
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(answer)]
    assert errors == [], answer
