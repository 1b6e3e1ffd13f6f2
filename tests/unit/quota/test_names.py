"""The names of the contract, and the grammars every door and controller share."""

from __future__ import annotations

import pytest

from quota import names


def test_the_api_groups_are_the_contracts() -> None:
    """DESIGN.md: ``image.alauda.io/v1`` (ImageStream, Image) and the registry operator's
    ``configs.imageregistry.operator.alauda.io``."""
    assert names.IMAGE_API_VERSION == "image.alauda.io/v1"
    assert (names.IMAGESTREAMS, names.IMAGES) == ("imagestreams", "images")
    assert f"{names.CONFIGS}.{names.OPERATOR_GROUP}" == "configs.imageregistry.operator.alauda.io"
    assert names.OPERATOR_VERSION == "v1"


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("sha256:" + "ab" * 32, True),
        ("sha512+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", True),
        ("sha256:", False),
        ("SHA256:ab", False),
        ("sha256:ab\n", False),
    ],
)
def test_a_digest_is_the_image_specs(value: str, digest: bool) -> None:
    assert bool(names.DIGEST.fullmatch(value)) is digest


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("sha256:" + "ab" * 32, True),
        ("sha512:" + "ab" * 64, True),
        ("sha512+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", True),
        ("sha256:" + "ab" * 31, False),
        ("sha256:" + "AB" * 32, False),
        ("sha512:" + "ab" * 32, False),
        ("sha256:" + "ab" * 32 + "\n", False),
    ],
)
def test_a_registered_algorithm_has_its_exact_encoding(value: str, digest: bool) -> None:
    """The registry's go-digest checks sha256 as 64 and sha512 as 128 lowercase hex digits."""
    assert names.is_digest(value) is digest


@pytest.mark.parametrize(
    ("value", "tag"),
    [("v1", True), ("_x", True), ("a" * 128, True), ("a" * 129, False), (".x", False)],
)
def test_a_tag_is_the_distribution_specs(value: str, tag: bool) -> None:
    assert names.is_tag(value) is tag
    assert names.TAG.pattern == f"^{names.TAG_GRAMMAR}$"


@pytest.mark.parametrize(
    ("value", "subdomain"),
    [("app", True), ("a.b-c", True), ("-app", False), ("App", False), ("a..b", False)],
)
def test_an_object_name_is_a_dns_subdomain(value: str, subdomain: bool) -> None:
    assert bool(names.DNS_SUBDOMAIN.fullmatch(value)) is subdomain


def test_a_generate_name_prefix_leaves_room_for_the_servers_suffix() -> None:
    """apiserver: ``MaxGeneratedNameLength`` = 63 (a DNS label) - ``randomLength``."""
    assert names.MAX_GENERATE_NAME_PREFIX + names.GENERATED_SUFFIX_LENGTH == 63
