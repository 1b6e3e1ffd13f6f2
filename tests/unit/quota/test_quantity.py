"""Quantity parsing (through the kubernetes helper) and formatting for messages."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity as k8s_parse_quantity

from quota.quantity import (
    MAX_QUANTITY,
    InvalidQuantity,
    format_bytes,
    format_count,
    parse_limit_value,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1Gi", 1073741824),
        ("500M", 500_000_000),
        ("10", 10),
        ("1.5Gi", 1610612736),
        ("1Ki", 1024),
        ("1k", 1000),
        ("2Mi", 2 * 1024**2),
        ("1Ti", 1024**4),
        ("1Pi", 1024**5),
        ("1Ei", 1024**6),
        ("1E", 10**18),
        ("100m", Decimal("0.1")),
        ("1e3", 1000),
        ("+1", 1),
        ("-1", -1),
        ("0", 0),
        ("1.1Gi", Decimal("1181116006.4")),
        (5, 5),
        (1.5, Decimal("1.5")),
        (0.1, Decimal("0.1")),
        (Decimal("7"), 7),
    ],
)
def test_parse_quantity_accepts_kubernetes_syntax(raw: object, expected: int | Decimal) -> None:
    value = parse_quantity(raw)
    assert isinstance(value, Decimal)
    assert value == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "Gi",
        "1ki",  # lower-case k has no binary form
        "1mi",
        "1ni",
        "1ui",
        "1i",
        "1Gb",
        "1 Gi",
        " 1",
        "1 ",
        "1\n",
        "1_000",
        "\u0661\u0662\u0663",  # Arabic-Indic digits: Decimal accepts them, Kubernetes not
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "sNaN",
        "NaNKi",
        "1e",
        "1e999999999",
        "-1e999999999",
        "1e999999999Ki",
        "9Ei",
        None,
        True,
        False,
        [],
        {},
        ["1"],
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("-Infinity"),
    ],
)
def test_parse_quantity_rejects_what_the_api_server_rejects(raw: object) -> None:
    with pytest.raises(InvalidQuantity) as info:
        parse_quantity(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.value is raw
    assert info.value.detail


def test_parse_quantity_bounds_at_int64() -> None:
    assert parse_quantity(str(2**63 - 1)) == MAX_QUANTITY
    assert parse_quantity(str(-(2**63 - 1))) == -MAX_QUANTITY
    with pytest.raises(InvalidQuantity, match="must be at most"):
        parse_quantity(str(2**63))


def test_invalid_quantity_message_names_the_value() -> None:
    with pytest.raises(InvalidQuantity) as info:
        parse_quantity("12x")
    assert "'12x'" in str(info.value)
    assert info.value.detail == "must be a quantity (for example 10, 500M, 1Gi)"


@given(st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1))
def test_parse_quantity_agrees_with_the_kubernetes_helper_on_integers(number: int) -> None:
    assert parse_quantity(str(number)) == k8s_parse_quantity(str(number)) == number


@pytest.mark.parametrize(
    ("raw", "integer", "expected"),
    [
        ("0", True, 0),
        ("-0", True, 0),
        ("20", True, 20),
        ("2k", True, 2000),
        ("1.0", True, 1),
        ("1.5", False, Decimal("1.5")),
        ("1Gi", False, 1073741824),
        ("500m", False, Decimal("0.5")),
    ],
)
def test_parse_limit_value_accepts(raw: str, integer: bool, expected: Decimal) -> None:
    assert parse_limit_value(raw, integer=integer) == expected


@pytest.mark.parametrize(
    ("raw", "integer", "detail"),
    [
        ("-1", True, "must be greater than or equal to 0"),
        ("-1Gi", False, "must be greater than or equal to 0"),
        ("-1.5", True, "must be greater than or equal to 0"),  # sign is reported first
        ("1.5", True, "must be an integer"),
        ("500m", True, "must be an integer"),
        ("ten", True, "must be a quantity (for example 10, 500M, 1Gi)"),
        (None, False, "must be a quantity (for example 10, 500M, 1Gi)"),
    ],
)
def test_parse_limit_value_rejects(raw: object, integer: bool, detail: str) -> None:
    with pytest.raises(InvalidQuantity) as info:
        parse_limit_value(raw, integer=integer)
    assert info.value.detail == detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1073741824, "1Gi"),
        (1610612736, "1536Mi"),
        (1500, "1500"),
        (0, "0"),
        (1, "1"),
        (1023, "1023"),
        (1024, "1Ki"),
        (1536, "1536"),
        (3 * 1024**2, "3Mi"),
        (1024**4, "1Ti"),
        (1024**5, "1Pi"),
        (1024**6, "1Ei"),
        (1024**7, "1024Ei"),
        (-1024, "-1Ki"),
        (-1500, "-1500"),
        (Decimal("1073741824.0"), "1Gi"),
        (Decimal("1181116006.4"), "1181116006400m"),
        (Decimal("0.5"), "500m"),
        (Decimal("0.0001"), "0.0001"),
    ],
)
def test_format_bytes_prints_canonical_binary_quantities(
    value: int | Decimal, expected: str
) -> None:
    assert format_bytes(value) == expected


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_format_bytes_round_trips_and_uses_the_largest_suffix(size: int) -> None:
    text = format_bytes(size)
    assert parse_quantity(text) == size
    if text.endswith("i"):
        number = int(text[:-2])
        assert number % 1024 != 0 or text.endswith("Ei")
    else:
        assert size == 0 or size % 1024 != 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(20, "20"), (0, "0"), (Decimal("20"), "20"), (Decimal("20.0"), "20"), (Decimal("2.5"), "2.5")],
)
def test_format_count_prints_plain_integers(value: int | Decimal, expected: str) -> None:
    assert format_count(value) == expected


@pytest.mark.parametrize(
    ("raw", "integer", "detail"),
    [("-1", False, "must be greater than or equal to 0"), ("1.5", True, "must be an integer")],
)
def test_a_refused_limit_value_carries_the_raw_value(raw: str, integer: bool, detail: str) -> None:
    with pytest.raises(InvalidQuantity) as raised:
        parse_limit_value(raw, integer=integer)
    assert (raw, detail) == (raised.value.value, raised.value.detail)
    assert repr(raw) in str(raised.value)


def test_tiny_fractions_print_as_plain_decimals_not_exponents() -> None:
    assert format_count(Decimal("1E-7")) == "0.0000001"
    assert format_bytes(Decimal("1E-7")) == "0.0000001"
