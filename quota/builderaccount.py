"""The namespace's ``builder`` ServiceAccount, as OpenShift's openshift-controller-manager
keeps ``builder`` in every namespace: without it the ``registry-image-builders`` binding
names no one, and a new user cannot push without first creating the account by hand.

The decision follows Kubernetes' own ServiceAccounts controller (``default`` in every
namespace), which OpenShift runs with the names ``builder`` and ``deployer``:

1. no account under the name: create it, marked with our managed-by label (so that an
   administrator can tell which accounts we made: ``kubectl get sa -A -l ...``); one
   deleted is created again on the next reconcile, as Kubernetes recreates ``default``;
2. an account under the name, ours or a user's: left exactly as it is, never updated or
   taken over (the pull-secret webhook and reconciler give it its secret like any other);
3. the namespace opted out of the default rights (``quota.rolebindings.OPT_OUT_KEY``):
   none is created, and one already there is kept, ours included. Opting out removes
   our *rights* (the bindings go); an account is an identity that pods, pipelines and
   tokens may hold by now, and deleting it would kill their tokens. OpenShift does the
   same when its builder account is disabled (enhancements/builds/disable-builder-sa:
   existing accounts "remain intact"). The label marks what an administrator may delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from quota.objects import Obj
from quota.pullsecrets.names import LABEL_MANAGED_BY, LABEL_MANAGED_BY_VALUE
from quota.rolebindings import BUILDER_ACCOUNT


class AccountAction(StrEnum):
    """What to do about the ``builder`` account of one namespace."""

    NONE = "the builder account exists: left as it is"
    CREATE = "no builder account"
    NONE_OPTED_OUT = "namespace opted out of the default rights: none created"


def desired_account(namespace: str) -> Obj:
    """The ``builder`` ServiceAccount as we create it in ``namespace``."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": BUILDER_ACCOUNT,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: LABEL_MANAGED_BY_VALUE},
        },
    }


def plan_account(existing: Mapping[str, Any] | None, *, opt_out: bool) -> AccountAction:
    """What to do, given the account under the name (``None``: there is none)."""
    if existing is not None:
        return AccountAction.NONE
    return AccountAction.NONE_OPTED_OUT if opt_out else AccountAction.CREATE
