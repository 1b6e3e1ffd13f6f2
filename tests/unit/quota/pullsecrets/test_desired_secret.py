import base64
import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quota.pullsecrets.desired_secret import (
    ServiceAccountRef,
    SigningKeyId,
    TokenGrant,
    build_desired_secret,
    fallback_placeholder,
    fallback_secrets,
    is_managed_secret,
    owner_reference,
    read_secret_config,
    retired_secrets,
    secret_is_current,
    service_account_name_of,
)
from quota.pullsecrets.dockerconfig import build_dockerconfigjson
from quota.pullsecrets.names import (
    ANNOTATION_PULL_SECRET_REF,
    ANNOTATION_SERVICE_ACCOUNT_NAME,
    ANNOTATION_TOKEN_EXPIRATION,
    ANNOTATION_TOKEN_ISSUED,
    LABEL_MANAGED_BY,
)
from quota.pullsecrets.reasons import Reason

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TOKEN = "eyJhbGciOi.SENSITIVE-TOKEN.sig"
HOSTS = ["image-registry.image-registry-system.svc:5000", "registry.example.com"]
GRANT = TokenGrant(TOKEN, T0, T0 + timedelta(hours=1))
FRESH = T0 + timedelta(minutes=5)


def make_sa(name: str = "builder", uid: str = "uid-1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid},
    }


def current_secret() -> dict[str, Any]:
    return build_desired_secret(make_sa(), HOSTS, GRANT)


def test_build_desired_secret_shape() -> None:
    sa = make_sa()
    original = copy.deepcopy(sa)
    secret = build_desired_secret(sa, [*HOSTS, HOSTS[0]], GRANT)
    assert sa == original
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": "builder-dockercfg",
            "namespace": "team-a",
            "labels": {"image.alauda.io/managed-by": "registry-v2-policy"},
            "annotations": {
                "image.alauda.io/service-account.name": "builder",
                "image.alauda.io/token-issued": "2025-03-01T12:00:00Z",
                "image.alauda.io/token-expiration": "2025-03-01T13:00:00Z",
                "image.alauda.io/token-audiences": "image-registry.alauda.io",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "name": "builder",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {
            ".dockerconfigjson": base64.b64encode(build_dockerconfigjson(HOSTS, TOKEN)).decode()
        },
    }
    payload = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert sorted(payload["auths"]) == sorted(HOSTS)


def test_placeholder_secret_has_valid_json_and_no_token() -> None:
    secret = build_desired_secret(make_sa(), HOSTS, None)
    payload = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert payload == {"auths": {}}
    assert ANNOTATION_TOKEN_ISSUED not in secret["metadata"]["annotations"]
    assert ANNOTATION_TOKEN_EXPIRATION not in secret["metadata"]["annotations"]
    assert is_managed_secret(secret)
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH) == (False, Reason.BAD_DATA)


def test_long_sa_name_uses_hashed_secret_name() -> None:
    secret = build_desired_secret(make_sa("a" * 250), HOSTS, GRANT)
    assert len(secret["metadata"]["name"]) == 253
    assert secret["metadata"]["annotations"][ANNOTATION_SERVICE_ACCOUNT_NAME] == "a" * 250
    assert secret_is_current(secret, make_sa("a" * 250), HOSTS, FRESH) == (True, Reason.CURRENT)


@pytest.mark.parametrize("missing", ["name", "namespace", "uid"])
def test_service_account_identity_is_required(missing: str) -> None:
    sa = make_sa()
    del sa["metadata"][missing]
    with pytest.raises(ValueError):
        build_desired_secret(sa, HOSTS, GRANT)
    with pytest.raises(ValueError):
        owner_reference(sa)
    with pytest.raises(ValueError):
        secret_is_current(current_secret(), sa, HOSTS, FRESH)


def test_service_account_ref_rejects_bad_metadata() -> None:
    assert ServiceAccountRef.of(make_sa()) == ServiceAccountRef("team-a", "builder", "uid-1")
    for bad in ({}, {"metadata": None}, {"metadata": {"name": "", "namespace": "n", "uid": "u"}}):
        with pytest.raises(
            ValueError, match=r"^ServiceAccount needs metadata\.namespace, name and uid$"
        ):
            ServiceAccountRef.of(bad)


def test_token_grant_validation_and_repr() -> None:
    assert TOKEN not in repr(GRANT)
    with pytest.raises(ValueError, match=r"^token must not be empty$"):
        TokenGrant("", T0, T0 + timedelta(hours=1))
    with pytest.raises(ValueError):
        TokenGrant(TOKEN, T0, T0)
    with pytest.raises(ValueError):
        TokenGrant(TOKEN, datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_fresh_secret_is_current() -> None:
    assert secret_is_current(current_secret(), make_sa(), HOSTS, FRESH) == (True, Reason.CURRENT)
    assert secret_is_current(current_secret(), make_sa(), list(reversed(HOSTS)), FRESH)[0]


def test_sixty_percent_boundary() -> None:
    secret = current_secret()
    before = T0 + timedelta(seconds=2159)
    at = T0 + timedelta(seconds=2160)
    assert secret_is_current(secret, make_sa(), HOSTS, before) == (True, Reason.CURRENT)
    assert secret_is_current(secret, make_sa(), HOSTS, at) == (False, Reason.TOKEN_EXPIRING)


def test_missing_secret() -> None:
    assert secret_is_current(None, make_sa(), HOSTS, FRESH) == (False, Reason.MISSING)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(secret: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        target: Any = secret
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


_DELETE = object()
B64_TOKEN = base64.b64encode(TOKEN.encode()).decode()

MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], Reason]] = {
    "user secret of same name": (
        lambda s: s["metadata"].update(labels={}, annotations={"note": TOKEN}),
        Reason.NOT_MANAGED,
    ),
    "user secret without metadata maps": (
        lambda s: s["metadata"].update(labels=None, annotations=None),
        Reason.NOT_MANAGED,
    ),
    "wrong name": (_set("metadata|name", "other-dockercfg"), Reason.WRONG_NAME),
    "wrong namespace": (_set("metadata|namespace", "team-b"), Reason.WRONG_NAME),
    "wrong type": (_set("type", "Opaque"), Reason.WRONG_TYPE),
    "no type": (_set("type", _DELETE), Reason.WRONG_TYPE),
    "sa recreated": (_set("metadata|ownerReferences|0|uid", "uid-0"), Reason.WRONG_OWNER),
    "owner is another kind": (_set("metadata|ownerReferences|0|kind", "Pod"), Reason.WRONG_OWNER),
    "owner other api version": (
        _set("metadata|ownerReferences|0|apiVersion", "v2"),
        Reason.WRONG_OWNER,
    ),
    "owner other name": (_set("metadata|ownerReferences|0|name", "x"), Reason.WRONG_OWNER),
    "no owner": (_set("metadata|ownerReferences", _DELETE), Reason.WRONG_OWNER),
    "owners null": (_set("metadata|ownerReferences", None), Reason.WRONG_OWNER),
    "owners junk": (_set("metadata|ownerReferences", ["junk", None]), Reason.WRONG_OWNER),
    "label stripped": (_set("metadata|labels", _DELETE), Reason.METADATA_DRIFT),
    "label changed": (
        _set("metadata|labels|" + LABEL_MANAGED_BY, "someone"),
        Reason.METADATA_DRIFT,
    ),
    "sa annotation stripped": (
        _set("metadata|annotations|" + ANNOTATION_SERVICE_ACCOUNT_NAME, _DELETE),
        Reason.METADATA_DRIFT,
    ),
    "sa annotation wrong": (
        _set("metadata|annotations|" + ANNOTATION_SERVICE_ACCOUNT_NAME, "other"),
        Reason.METADATA_DRIFT,
    ),
    "data missing": (_set("data", _DELETE), Reason.BAD_DATA),
    "data null": (_set("data", None), Reason.BAD_DATA),
    "key missing": (_set("data|.dockerconfigjson", _DELETE), Reason.BAD_DATA),
    "not base64": (_set("data|.dockerconfigjson", TOKEN + "!"), Reason.BAD_DATA),
    "base64 of token, not JSON": (_set("data|.dockerconfigjson", B64_TOKEN), Reason.BAD_DATA),
    "issued missing": (
        _set("metadata|annotations|" + ANNOTATION_TOKEN_ISSUED, _DELETE),
        Reason.TOKEN_TIMES_INVALID,
    ),
    "expiry garbage": (
        _set("metadata|annotations|" + ANNOTATION_TOKEN_EXPIRATION, TOKEN),
        Reason.TOKEN_TIMES_INVALID,
    ),
    "host dropped": (
        _set(
            "data|.dockerconfigjson",
            base64.b64encode(build_dockerconfigjson(HOSTS[:1], TOKEN)).decode(),
        ),
        Reason.HOSTNAMES_CHANGED,
    ),
    "extra host": (
        _set(
            "data|.dockerconfigjson",
            base64.b64encode(build_dockerconfigjson([*HOSTS, "old.example"], TOKEN)).decode(),
        ),
        Reason.HOSTNAMES_CHANGED,
    ),
}


@pytest.mark.parametrize(("mutate", "reason"), MUTATIONS.values(), ids=MUTATIONS.keys())
def test_secret_not_current(mutate: Callable[[dict[str, Any]], None], reason: Reason) -> None:
    secret = current_secret()
    mutate(secret)
    ok, got = secret_is_current(secret, make_sa(), HOSTS, FRESH)
    assert (ok, got) == (False, reason)
    assert TOKEN not in got and B64_TOKEN not in got and "SENSITIVE" not in got


def test_extra_owner_references_are_fine() -> None:
    secret = current_secret()
    secret["metadata"]["ownerReferences"].insert(0, {"apiVersion": "v1", "kind": "Pod", "uid": "x"})
    secret["metadata"]["labels"]["team"] = "a"
    secret["metadata"]["annotations"]["note"] = "x"
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH) == (True, Reason.CURRENT)


def test_sa_recreated_with_same_name_is_detected() -> None:
    secret = current_secret()
    assert secret_is_current(secret, make_sa(uid="uid-2"), HOSTS, FRESH) == (
        False,
        Reason.WRONG_OWNER,
    )


def test_no_reason_contains_secret_material() -> None:
    for reason in Reason:
        assert TOKEN not in reason.value
        assert "%" not in reason.value.replace("60%", "") and "{" not in reason.value


def test_reason_repair_kinds() -> None:
    recreate = {r for r in Reason if r.needs_recreate}
    new_token = {r for r in Reason if r.needs_new_token}
    assert recreate == {Reason.MISSING, Reason.WRONG_TYPE, Reason.WRONG_OWNER}
    assert new_token == recreate | {
        Reason.BAD_DATA,
        Reason.TOKEN_TIMES_INVALID,
        Reason.HOSTNAMES_CHANGED,
        Reason.TOKEN_EXPIRING,
        Reason.AUDIENCE_CHANGED,
        Reason.SIGNING_KEY_CHANGED,
    }
    for reason in (Reason.CURRENT, Reason.NOT_MANAGED, Reason.WRONG_NAME, Reason.METADATA_DRIFT):
        assert not reason.needs_new_token and not reason.needs_recreate


def test_is_managed_secret_markers() -> None:
    secret = current_secret()
    assert is_managed_secret(secret)
    del secret["metadata"]["labels"]
    assert is_managed_secret(secret)  # annotation alone suffices
    secret = current_secret()
    del secret["metadata"]["annotations"][ANNOTATION_SERVICE_ACCOUNT_NAME]
    assert is_managed_secret(secret)  # label alone suffices
    del secret["metadata"]["labels"]
    assert not is_managed_secret(secret)
    assert not is_managed_secret({})
    assert not is_managed_secret({"metadata": None})


def test_service_account_name_of() -> None:
    assert service_account_name_of(current_secret()) == "builder"
    assert service_account_name_of({"metadata": {"annotations": None}}) is None
    assert (
        service_account_name_of(
            {"metadata": {"annotations": {ANNOTATION_SERVICE_ACCOUNT_NAME: ""}}}
        )
        is None
    )
    assert service_account_name_of({}) is None


def test_read_secret_config() -> None:
    config = read_secret_config(current_secret())
    assert config is not None and config.token == TOKEN and set(config.hostnames) == set(HOSTS)
    assert read_secret_config({}) is None
    assert read_secret_config({"data": {".dockerconfigjson": "!!"}}) is None


@given(st.integers(min_value=-(10**10), max_value=10**10))
def test_property_current_until_refresh_time(offset_us: int) -> None:
    now = T0 + timedelta(microseconds=offset_us)
    ok, reason = secret_is_current(current_secret(), make_sa(), HOSTS, now)
    expected = offset_us < 2160 * 10**6
    assert ok is expected
    assert reason is (Reason.CURRENT if expected else Reason.TOKEN_EXPIRING)


# --- token audiences -----------------------------------------------------------------------


def test_a_token_is_minted_for_the_registry_unless_told_otherwise() -> None:
    assert GRANT.audiences == ("image-registry.alauda.io",)
    secret = build_desired_secret(make_sa(), HOSTS, replace(GRANT, audiences=("b", "a", "b")))
    assert secret["metadata"]["annotations"]["image.alauda.io/token-audiences"] == "a,b"


def test_a_token_without_an_audience_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a managed token needs an audience"):
        TokenGrant(TOKEN, T0, T0 + timedelta(hours=1), audiences=())


@pytest.mark.parametrize("recorded", [None, "", "https://kubernetes.default.svc", "other"])
def test_a_secret_minted_for_other_audiences_is_refreshed_at_once(recorded: str | None) -> None:
    """Secrets written before --token-audiences existed carry an API-server token and no
    annotation: they are replaced on the first reconcile after an upgrade."""
    secret = current_secret()
    annotations = secret["metadata"]["annotations"]
    if recorded is None:
        del annotations["image.alauda.io/token-audiences"]
    else:
        annotations["image.alauda.io/token-audiences"] = recorded
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH) == (False, Reason.AUDIENCE_CHANGED)


def test_a_secret_for_the_desired_audiences_is_current_in_any_order() -> None:
    secret = build_desired_secret(make_sa(), HOSTS, replace(GRANT, audiences=("b", "a")))
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, ("a", "b")) == (True, Reason.CURRENT)
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, ("a",))[1] is Reason.AUDIENCE_CHANGED


# --- Secrets retired by a rename -----------------------------------------------------------


def renamed(secret: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(secret)
    out["metadata"]["name"] = name
    return out


def test_only_this_sas_managed_secrets_under_another_name_are_retired() -> None:
    sa = make_sa()
    current = current_secret()
    old = renamed(current, "builder-0123456789-dockercfg")
    foreign_owner = renamed(current, "x-dockercfg")
    foreign_owner["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    unmanaged = renamed(current, "y-dockercfg")
    unmanaged["metadata"]["labels"] = {}
    unmanaged["metadata"]["annotations"] = {}
    other_sa = build_desired_secret(make_sa(name="other"), HOSTS, GRANT)
    secrets = [current, old, foreign_owner, unmanaged, other_sa]
    assert retired_secrets(secrets, sa) == [old]


def test_while_a_fallback_is_used_the_sas_plain_managed_secret_is_retired() -> None:
    sa = make_sa()
    plain = current_secret()
    fallback = renamed(plain, "builder-dockercfg-bcd2f")
    assert retired_secrets([plain, fallback], sa, "builder-dockercfg-bcd2f") == [plain]
    assert retired_secrets([plain, fallback], sa) == [fallback]


def test_the_fallback_placeholder_asks_the_api_server_for_a_name() -> None:
    placeholder = fallback_placeholder(make_sa(), HOSTS)
    meta = placeholder["metadata"]
    assert "name" not in meta
    assert meta["generateName"] == "builder-dockercfg-"
    assert is_managed_secret(placeholder)
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert placeholder["type"] == "kubernetes.io/dockerconfigjson"


def test_a_fallback_secret_is_current_under_its_own_name_only() -> None:
    secret = build_desired_secret(make_sa(), HOSTS, GRANT, "builder-dockercfg-bcd2f")
    assert secret["metadata"]["name"] == "builder-dockercfg-bcd2f"
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, name="builder-dockercfg-bcd2f")[0]
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH) == (False, Reason.WRONG_NAME)


def test_only_the_sas_own_generated_secrets_are_its_fallbacks_recorded_one_first() -> None:
    """Adoption, not creation: a Secret the SA already has under a generated name is used
    again (a lost create answer may leave two; the recorded, else the oldest, wins)."""
    sa = make_sa()
    base = current_secret()
    older = renamed(base, "builder-dockercfg-bbbbb")
    older["metadata"]["creationTimestamp"] = "2025-03-01T12:00:00Z"
    newer = renamed(base, "builder-dockercfg-aaaaa")
    newer["metadata"]["creationTimestamp"] = "2025-03-01T12:00:01Z"
    foreign_owner = renamed(base, "builder-dockercfg-ccccc")
    foreign_owner["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    unmanaged = renamed(base, "builder-dockercfg-ddddd")
    unmanaged["metadata"]["labels"] = {}
    unmanaged["metadata"]["annotations"] = {}
    other_sa = build_desired_secret(make_sa(name="other"), HOSTS, GRANT, "other-dockercfg-eeeee")
    every = [base, newer, foreign_owner, unmanaged, other_sa, older]
    assert fallback_secrets(every, sa) == [older, newer]
    sa["metadata"]["annotations"] = {ANNOTATION_PULL_SECRET_REF: "builder-dockercfg-aaaaa"}
    assert fallback_secrets(every, sa) == [newer, older]


def test_a_token_signed_by_a_key_that_no_longer_signs_is_stale() -> None:
    secret = build_desired_secret(make_sa(), HOSTS, replace(GRANT, key_id="key-1"))
    assert secret["metadata"]["annotations"]["image.alauda.io/token-key-id"] == "key-1"
    same = SigningKeyId("key-1", FRESH)
    rotated = SigningKeyId("key-2", FRESH)  # learnt after the token was issued (T0)
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, signing_key=same) == (
        True,
        Reason.CURRENT,
    )
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, signing_key=rotated) == (
        False,
        Reason.SIGNING_KEY_CHANGED,
    )
    assert Reason.SIGNING_KEY_CHANGED.needs_new_token
    assert not Reason.SIGNING_KEY_CHANGED.needs_recreate  # the Secret stays; its token goes


def test_a_token_of_another_key_minted_after_the_change_is_left_to_its_clock() -> None:
    """Several API servers roll a new key one at a time: a token minted meanwhile by one
    still on the old key is not stale, or every refresh would make another stale one."""
    secret = build_desired_secret(make_sa(), HOSTS, replace(GRANT, key_id="key-1"))
    learnt_before_it = SigningKeyId("key-2", T0 - timedelta(seconds=1))
    assert secret_is_current(secret, make_sa(), HOSTS, FRESH, signing_key=learnt_before_it)[0]


def test_a_token_of_unknown_key_is_stale_once_the_signing_key_is_known() -> None:
    """Secrets written before keys were recorded: replaced at once, as those of unknown
    audience are; while the signing key is unknown, no Secret is judged by it."""
    unrecorded = current_secret()
    assert "image.alauda.io/token-key-id" not in unrecorded["metadata"]["annotations"]
    known = SigningKeyId("key-1", FRESH)
    assert secret_is_current(unrecorded, make_sa(), HOSTS, FRESH, signing_key=known) == (
        False,
        Reason.SIGNING_KEY_CHANGED,
    )
    assert secret_is_current(unrecorded, make_sa(), HOSTS, FRESH, signing_key=None)[0]


def test_a_token_issued_the_instant_the_key_was_learnt_is_left_to_its_clock() -> None:
    """Only a token issued before the new key was learnt predates the rotation."""
    secret = build_desired_secret(make_sa(), HOSTS, replace(GRANT, key_id="key-1"))
    learnt_as_it_was_issued = SigningKeyId("key-2", T0)
    assert secret_is_current(
        secret, make_sa(), HOSTS, FRESH, signing_key=learnt_as_it_was_issued
    ) == (True, Reason.CURRENT)


def test_a_signing_key_without_an_id_is_refused_saying_why() -> None:
    with pytest.raises(ValueError, match=r"^key_id must not be empty$"):
        SigningKeyId("", T0)
