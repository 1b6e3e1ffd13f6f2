"""Kubernetes-shaped field errors."""

from decimal import Decimal

import pytest

from quota.fielderrors import ErrorType, FieldError, Problem, format_bad_value, unsupported


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            FieldError(
                "spec.limits[0].max[alauda.io/images]",
                ErrorType.INVALID,
                "-1",
                "must be greater than or equal to 0",
            ),
            'spec.limits[0].max[alauda.io/images]: Invalid value: "-1": '
            "must be greater than or equal to 0",
        ),
        (
            FieldError("spec.hard[x]", ErrorType.INVALID, -1, "must be greater than or equal to 0"),
            "spec.hard[x]: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            FieldError("spec.limits[0].default", ErrorType.FORBIDDEN, {"a": 1}, "no"),
            "spec.limits[0].default: Forbidden: no",
        ),
        (FieldError("spec.x", ErrorType.REQUIRED), "spec.x: Required value"),
        (FieldError("spec.x", ErrorType.INVALID, "v"), 'spec.x: Invalid value: "v"'),
        (
            unsupported("spec.limits[1].type", "alauda.io/Foo", ("alauda.io/Image", "b")),
            'spec.limits[1].type: Unsupported value: "alauda.io/Foo": '
            'supported values: "alauda.io/Image", "b"',
        ),
    ],
)
def test_field_error_str(error: FieldError, expected: str) -> None:
    assert str(error) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", '"x"'),
        ('a"b', '"a\\"b"'),
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ({"b": 1, "a": [1, "2"]}, '{"a":[1,"2"],"b":1}'),
    ],
)
def test_format_bad_value(value: object, expected: str) -> None:
    assert format_bad_value(value) == expected


def test_format_bad_value_is_total_on_circular_values() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert format_bad_value(loop) == "[[...]]"


def test_problem_names_its_object() -> None:
    problem = Problem("LimitRange", "lr", FieldError("spec.limits", ErrorType.REQUIRED))
    assert str(problem) == 'LimitRange "lr": spec.limits: Required value'


def test_a_value_json_cannot_encode_is_printed_as_text() -> None:
    assert format_bad_value({"max": Decimal("1.5")}) == '{"max":"1.5"}'
