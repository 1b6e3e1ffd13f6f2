"""Kubernetes quantities: parsing through the client's helper, and formatting for messages.

Values are parsed by ``kubernetes.utils.quantity.parse_quantity`` only. That helper is built
on ``decimal.Decimal`` and is more lenient than the API server (it accepts ``NaN``,
``Infinity``, surrounding spaces, ``1_000``, non-ASCII digits and, in older releases,
``1mi``), so the wrapper rejects those inputs before or after calling it instead of
re-implementing the grammar.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final

from kubernetes.utils import quantity as _k8s_quantity

# The helper is untyped; pin the signature we rely on and check the result at runtime.
_k8s_parse_quantity: Callable[[object], object] = _k8s_quantity.parse_quantity

#: Largest magnitude accepted; Kubernetes quantities cannot represent more than an int64.
MAX_QUANTITY: Final = Decimal(2**63 - 1)

_BINARY_SUFFIXES: Final = ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki")

QUANTITY_HINT: Final = "must be a quantity (for example 10, 500M, 1Gi)"


class InvalidQuantity(ValueError):
    """A value that is not a usable Kubernetes quantity.

    ``detail`` is a user-facing sentence fragment suited to a Kubernetes field error
    (``must be greater than or equal to 0``), ``value`` the offending raw value.
    """

    def __init__(self, value: object, detail: str) -> None:
        super().__init__(f"invalid quantity {value!r}: {detail}")
        self.value = value
        self.detail = detail


def parse_quantity(value: object) -> Decimal:
    """Parse a quantity (``"1Gi"``, ``"500M"``, ``"10"``, an int) into a finite Decimal.

    Raises InvalidQuantity for anything the API server would not accept as a quantity:
    booleans, None, containers, NaN/Infinity, values padded with spaces, and magnitudes
    beyond an int64.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise InvalidQuantity(value, QUANTITY_HINT)
    if (
        isinstance(value, str)
        and (
            not value.isascii()
            or "_" in value
            or any(ch.isspace() for ch in value)
            # Older helper releases (the pinned range allows them) read "1mi" as 1/1024.
            or (value.endswith("i") and value[-2:] not in _BINARY_SUFFIXES)
        )
    ):
        raise InvalidQuantity(value, QUANTITY_HINT)
    # A float such as 1.5 from YAML is taken at its shortest decimal spelling, not its
    # binary expansion (Decimal(0.1) is 0.1000000000000000055...).
    raw: object = repr(value) if isinstance(value, float) else value
    try:
        parsed = _k8s_parse_quantity(raw)
    except (ValueError, ArithmeticError) as exc:
        raise InvalidQuantity(value, QUANTITY_HINT) from exc
    if not isinstance(parsed, Decimal) or not parsed.is_finite():
        raise InvalidQuantity(value, QUANTITY_HINT)
    if parsed.copy_abs() > MAX_QUANTITY:  # copy_abs is exact; abs() may overflow
        raise InvalidQuantity(value, f"must be at most {MAX_QUANTITY}")
    return parsed


def parse_limit_value(value: object, *, integer: bool) -> Decimal:
    """Parse a limit or quota value: a non-negative quantity, whole when ``integer``.

    The checks run in the order a user fixes them: syntax, sign, then integrality.
    """
    parsed = parse_quantity(value)
    if parsed < 0:
        raise InvalidQuantity(value, "must be greater than or equal to 0")
    if integer and parsed != parsed.to_integral_value():
        raise InvalidQuantity(value, "must be an integer")
    return parsed


def format_count(value: int | Decimal) -> str:
    """Print a count as a plain integer (``20``); a fractional value prints as a decimal."""
    if isinstance(value, int):
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def format_bytes(value: int | Decimal) -> str:
    """Print a byte size as Kubernetes' canonical binary quantity.

    The largest binary suffix that divides the value exactly is used: 1073741824 -> ``1Gi``,
    1610612736 -> ``1536Mi``, 1500 -> ``1500``. A fractional size (a max of ``1.1Gi``) prints
    in milli units like Kubernetes does (``1181116006400m``), or as a plain decimal when even
    that is not exact.
    """
    dec = Decimal(value)
    if dec != dec.to_integral_value():
        milli = dec * 1000
        if milli == milli.to_integral_value():
            return f"{int(milli)}m"
        return format(dec.normalize(), "f")
    number = int(dec)
    sign, magnitude = ("-", -number) if number < 0 else ("", number)
    if magnitude == 0:
        return "0"
    for index, suffix in enumerate(_BINARY_SUFFIXES):
        unit = 1024 ** (len(_BINARY_SUFFIXES) - index)
        if magnitude % unit == 0:
            return f"{sign}{magnitude // unit}{suffix}"
    return f"{sign}{magnitude}"
