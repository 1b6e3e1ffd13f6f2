"""The ``builder`` account's rules: created when missing, never touched once there, none
made (and none deleted) in a namespace that opted out."""

from __future__ import annotations

import pytest

from quota.builderaccount import AccountAction, desired_account, plan_account
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE


def test_the_account_is_named_builder_and_marked_as_ours() -> None:
    account = desired_account("team-a")
    assert (account["apiVersion"], account["kind"]) == ("v1", "ServiceAccount")
    assert account["metadata"]["name"] == "builder"
    assert account["metadata"]["namespace"] == "team-a"
    assert account["metadata"]["labels"] == {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}
    # Nothing of the pull secret: the webhook adds it to our account as to any other.
    assert "imagePullSecrets" not in account


def test_a_missing_account_is_created() -> None:
    assert plan_account(None, opt_out=False) is AccountAction.CREATE


@pytest.mark.parametrize("opt_out", [False, True])
@pytest.mark.parametrize(
    "labels",
    [{}, {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE}, {LABEL_MANAGED_BY: "someone-else"}],
    ids=["users", "ours", "other-managers"],
)
def test_an_existing_account_is_never_touched_ours_or_not(
    labels: dict[str, str], opt_out: bool
) -> None:
    existing = {"metadata": {"name": "builder", "namespace": "team-a", "labels": labels}}
    assert plan_account(existing, opt_out=opt_out) is AccountAction.NONE


def test_an_opted_out_namespace_gets_none() -> None:
    assert plan_account(None, opt_out=True) is AccountAction.NONE_OPTED_OUT
