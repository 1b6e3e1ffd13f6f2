import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.names import DNS_SUBDOMAIN, MAX_GENERATE_NAME_PREFIX, MAX_NAME_LENGTH
from quota.pullsecrets import names
from quota.pullsecrets.names import secret_name_for


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= MAX_NAME_LENGTH and DNS_SUBDOMAIN.fullmatch(value) is not None


def test_contract_keys_and_hostnames() -> None:
    assert names.ANNOTATION_SERVICE_ACCOUNT_NAME == "image.alauda.io/service-account.name"
    assert names.ANNOTATION_PULL_SECRET_REF == "image.alauda.io/internal-registry-pull-secret-ref"
    assert names.OPT_OUT_KEY == "image.alauda.io/managed-pull-secret"
    assert names.OPT_OUT_VALUE == "false"
    assert names.DEFAULT_INTERNAL_HOSTNAMES == (
        "image-registry.image-registry-system.svc:5000",
        "image-registry.image-registry-system.svc.cluster.local:5000",
    )
    assert names.SECRET_TYPE_DOCKERCONFIGJSON == "kubernetes.io/dockerconfigjson"


def test_managed_label_does_not_reuse_opt_out_key() -> None:
    keys: set[str] = {names.LABEL_MANAGED_BY, names.OPT_OUT_KEY}
    assert len(keys) == 2
    assert names.MANAGED_SECRET_SELECTOR == "image.alauda.io/managed-by=registry-v2-policy"


def test_short_name_gets_plain_suffix() -> None:
    assert secret_name_for("builder") == "builder-dockercfg"
    assert secret_name_for("a.b-c") == "a.b-c-dockercfg"


def test_longest_unhashed_name_is_exactly_253() -> None:
    sa = "a" * (253 - len("-dockercfg"))
    assert secret_name_for(sa) == sa + "-dockercfg"
    assert len(secret_name_for(sa)) == 253


def test_one_char_longer_is_truncated_and_hashed() -> None:
    sa = "a" * (254 - len("-dockercfg"))
    digest = hashlib.sha256(sa.encode()).hexdigest()[:10]
    result = secret_name_for(sa)
    assert len(result) == 253
    assert result.endswith(f"-dockercfg-{digest}")
    assert result.startswith("a" * 200)
    assert is_dns_subdomain(result)


@pytest.mark.parametrize("cut_char", ["-", "."])
def test_truncation_never_leaves_dash_or_dot_before_hash(cut_char: str) -> None:
    # The head keeps 253 - len("-<10 hex>-dockercfg") = 232 characters; put the cut on
    # a '-' or '.' (and the one before it too) to force stripping.
    sa = "a" * 230 + "b" + cut_char + "c" * 21
    assert len(sa) == 253
    result = secret_name_for(sa)
    assert is_dns_subdomain(result), result
    assert result.startswith("a" * 230 + "b-")
    assert len(result) == 252


def test_deterministic_and_distinct_for_long_names_sharing_a_prefix() -> None:
    a = "x" * 240 + "-alpha"
    b = "x" * 240 + "-bravo"
    assert secret_name_for(a) == secret_name_for(a)
    assert secret_name_for(a) != secret_name_for(b)


def test_empty_name_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^ServiceAccount name must not be empty$"):
        secret_name_for("")


def test_a_long_name_of_separators_only_still_gives_a_valid_name() -> None:
    """Not a valid ServiceAccount name, but the rule stays total: no leading '-'."""
    name = secret_name_for("-" * 300)
    assert name[0].isalnum()
    assert name.startswith("dockercfg-") and len(name) <= MAX_NAME_LENGTH


@pytest.mark.parametrize("length", range(1, 254))
def test_every_length_yields_a_valid_name(length: int) -> None:
    sa = ("ab-c." * 60)[:length].rstrip("-.") or "a"
    result = secret_name_for(sa)
    assert is_dns_subdomain(result), (length, result)


_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
dns_names = (
    st.lists(_label, min_size=1, max_size=8)
    .map(".".join)
    .filter(lambda s: len(s) <= MAX_NAME_LENGTH)
)


@given(dns_names)
def test_property_result_is_valid_dns_subdomain(sa: str) -> None:
    result = secret_name_for(sa)
    assert is_dns_subdomain(result)
    if len(sa) + len("-dockercfg") <= MAX_NAME_LENGTH:
        assert result == sa + "-dockercfg"


@given(dns_names, dns_names)
def test_property_distinct_sa_names_give_distinct_secret_names(a: str, b: str) -> None:
    if a != b:
        assert secret_name_for(a) != secret_name_for(b)


def test_truncation_trims_separators_and_nothing_else() -> None:
    assert secret_name_for("x" * 300).startswith("x" * 200)
    assert secret_name_for("X" * 300).startswith("X" * 200)


def test_no_crafted_short_name_takes_a_long_names_secret() -> None:
    """A 250-character SA name must not map to the plain name of another SA: with the hash
    before the suffix, an attacker could create the SA '<truncated>-<hash>' and own it."""
    long = "a" * 250
    taken = secret_name_for(long)
    crafted = taken.removesuffix("-dockercfg")
    assert secret_name_for(crafted) != taken


@given(dns_names)
def test_property_long_names_never_look_like_plain_ones(sa: str) -> None:
    long = (sa + "-" + "x" * MAX_NAME_LENGTH)[: MAX_NAME_LENGTH + 5]
    assert not secret_name_for(long).endswith("-dockercfg")
    assert secret_name_for(long).startswith(long[:100].rstrip("-."))


def test_the_fallback_prefix_is_the_plain_name_and_a_dash_for_the_generated_suffix() -> None:
    assert names.fallback_prefix("builder") == "builder-dockercfg-"


@pytest.mark.parametrize("length", [1, 46, 47, 48, 63, 200, 253])
def test_a_fallback_prefix_stays_whole_in_generate_name(length: int) -> None:
    """The API server cuts a ``generateName`` longer than 58 characters: the prefix must
    fit, so ``-dockercfg-`` survives, and the generated name is a valid Secret name."""
    prefix = names.fallback_prefix("a" * length)
    assert len(prefix) <= MAX_GENERATE_NAME_PREFIX == 58
    assert prefix.endswith("-dockercfg-")
    assert is_dns_subdomain(prefix + "x2b4c")


@pytest.mark.parametrize("cut_char", ["-", "."])
def test_a_fallback_prefix_never_cuts_before_a_dash_or_dot(cut_char: str) -> None:
    sa = "a" * 45 + cut_char * 2 + "b" * 20  # the head keeps 58 - 11 = 47 characters
    prefix = names.fallback_prefix(sa)
    assert prefix == "a" * 45 + "-dockercfg-"
    assert is_dns_subdomain(prefix + "x2b4c")


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?", fullmatch=True))
def test_no_fallback_name_is_a_plain_or_long_name_of_any_serviceaccount(sa: str) -> None:
    """The plain name can be squatted before its SA exists; a generated fallback name must
    never be what some other SA's plain (or hashed long) name is, or a squatter could take
    it by creating that SA."""
    generated = names.fallback_prefix(sa) + "bcd2f"
    assert names.is_fallback_name(generated, sa)
    assert not generated.endswith("-dockercfg")
    assert len(generated) <= 63 < len(secret_name_for("a" * 244))


@pytest.mark.parametrize(
    "name",
    [
        "builder-dockercfg",  # the plain name: the squatter's
        "builder-dockercfg-",  # no suffix
        "builder-dockercfg-abcd",  # too short
        "builder-dockercfg-abcdef",  # too long
        "builder-dockercfg-ABCDE",  # the API server generates lowercase
        "other-dockercfg-bcd2f",  # another SA's
        "builder-dockercfg-0123456789",  # a long name's hash
    ],
)
def test_only_a_generated_fallback_name_of_this_serviceaccount_is_one(name: str) -> None:
    assert not names.is_fallback_name(name, "builder")
    assert names.is_fallback_name("builder-dockercfg-bcd2f", "builder")


def test_a_fallback_prefix_for_no_name_is_refused_saying_why() -> None:
    with pytest.raises(ValueError, match=r"^ServiceAccount name must not be empty$"):
        names.fallback_prefix("")
