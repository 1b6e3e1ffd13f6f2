"""The certificate manager's rules: renewals, and CA rotation without a moment of distrust."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from controller.certificates.rules import (
    CA_VALIDITY,
    SERVING_VALIDITY,
    Certificate,
    Plan,
    Serving,
    State,
    decide,
    serving_trusted,
)

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
P = dt.timedelta(minutes=3)
HOSTS = frozenset({"svc.ns.svc", "127.0.0.1"})
EMPTY = State(bundle=(), signing=None, serving=None, bundle_live_since=None)

_serials = itertools.count()
T = TypeVar("T")


def ca(at: dt.datetime, validity: dt.timedelta = CA_VALIDITY) -> Certificate:
    return Certificate(f"ca-{next(_serials)}", at, at + validity)


def serving(
    issuer: Certificate | str | None,
    at: dt.datetime,
    *,
    hosts: frozenset[str] = HOSTS,
    validity: dt.timedelta = SERVING_VALIDITY,
) -> Serving:
    fingerprint = issuer.fingerprint if isinstance(issuer, Certificate) else issuer
    cert = Certificate(f"leaf-{next(_serials)}", at, at + validity)
    return Serving(cert, fingerprint, hosts, issued_at=at)


def settled(at: dt.datetime = T0) -> tuple[State, Certificate]:
    """One CA, live for long, that signed the serving certificate."""
    root = ca(at)
    return State((root,), root.fingerprint, serving(root, at), bundle_live_since=at), root


def test_nothing_at_all_gets_a_ca_and_a_serving_certificate_at_once() -> None:
    plan = decide(EMPTY, T0, HOSTS, P)
    assert plan.new_ca and plan.issue_serving and plan.keep == ()


def test_a_settled_state_changes_nothing_until_the_serving_renewal() -> None:
    state, _ = settled()
    plan = decide(state, T0 + dt.timedelta(days=1), HOSTS, P)
    assert not plan.changes(state)
    assert state.serving is not None
    assert plan.recheck_at == state.serving.certificate.renew_at


def test_the_serving_certificate_is_renewed_at_two_thirds_of_its_life_by_the_same_ca() -> None:
    state, root = settled()
    assert state.serving is not None
    due = T0 + SERVING_VALIDITY * 2 / 3
    assert not decide(state, due - dt.timedelta(seconds=1), HOSTS, P).issue_serving
    plan = decide(state, due, HOSTS, P)
    assert plan.issue_serving and not plan.new_ca and plan.keep == (root.fingerprint,)


def test_a_serving_certificate_that_misses_a_host_is_renewed_at_once() -> None:
    state, _ = settled()
    assert state.serving is not None
    narrow = dataclasses.replace(state.serving, hosts=frozenset({"svc.ns.svc"}))
    plan = decide(dataclasses.replace(state, serving=narrow), T0, HOSTS, P)
    assert plan.issue_serving and not plan.new_ca


def test_the_ca_is_renewed_at_two_thirds_of_its_life_beside_the_old_one() -> None:
    state, root = settled()
    due = T0 + CA_VALIDITY * 2 / 3
    state = dataclasses.replace(state, serving=serving(root, due - dt.timedelta(days=1)))
    assert not decide(state, due - dt.timedelta(seconds=1), HOSTS, P).new_ca
    plan = decide(state, due, HOSTS, P)
    assert plan.new_ca and plan.keep == (root.fingerprint,)
    assert not plan.issue_serving, "the new CA must be published before it signs"


def test_a_rotation_request_adds_a_ca_and_the_switch_waits_for_the_bundle() -> None:
    state, old = settled()
    now = T0 + dt.timedelta(days=1)
    plan = decide(dataclasses.replace(state, rotation_requested=True), now, HOSTS, P)
    assert plan.new_ca and not plan.issue_serving and plan.keep == (old.fingerprint,)
    new = ca(now)
    overlap = dataclasses.replace(state, bundle=(old, new), signing=new.fingerprint)
    # Not published yet: no switch, however long it has been.
    unpublished = dataclasses.replace(overlap, bundle_live_since=None)
    assert not decide(unpublished, now + 10 * P, HOSTS, P).changes(unpublished)
    # Published: the switch comes after the propagation time, not before.
    live = dataclasses.replace(overlap, bundle_live_since=now)
    early = decide(live, now + P - dt.timedelta(seconds=1), HOSTS, P)
    assert not early.changes(live) and early.recheck_at == now + P
    switch = decide(live, now + P, HOSTS, P)
    assert switch.issue_serving and switch.keep == (old.fingerprint, new.fingerprint)


def test_the_old_ca_leaves_only_once_the_new_serving_certificate_has_propagated() -> None:
    old, new = ca(T0), ca(T0)
    switched_at = T0 + dt.timedelta(days=1)
    state = State((old, new), new.fingerprint, serving(new, switched_at), bundle_live_since=T0)
    early = decide(state, switched_at + P - dt.timedelta(seconds=1), HOSTS, P)
    assert not early.changes(state) and early.recheck_at == switched_at + P
    plan = decide(state, switched_at + P, HOSTS, P)
    assert plan.keep == (new.fingerprint,) and not plan.issue_serving and not plan.new_ca


def test_a_serving_certificate_of_unknown_age_keeps_the_old_ca() -> None:
    old, new = ca(T0), ca(T0)
    unknown = dataclasses.replace(serving(new, T0), issued_at=None)
    state = State((old, new), new.fingerprint, unknown, bundle_live_since=T0)
    assert not decide(state, T0 + 100 * P, HOSTS, P).changes(state)


def test_a_second_request_before_the_switch_replaces_the_unused_ca() -> None:
    old, unused = ca(T0), ca(T0)
    state = State((old, unused), unused.fingerprint, serving(old, T0), T0, rotation_requested=True)
    plan = decide(state, T0 + dt.timedelta(seconds=5), HOSTS, P)
    assert plan.new_ca and plan.keep == (old.fingerprint,)


def test_a_request_while_the_old_ca_is_still_leaving_waits_for_it() -> None:
    """[old, used, next] at most: a fourth CA waits until the old ones have left."""
    old, used, nxt = ca(T0), ca(T0), ca(T0)
    switched_at = T0 + dt.timedelta(hours=1)
    state = State(
        (old, used, nxt), nxt.fingerprint, serving(nxt, switched_at), T0, rotation_requested=True
    )
    plan = decide(state, switched_at + P / 2, HOSTS, P)
    assert not plan.changes(state) and plan.recheck_at == switched_at + P
    assert decide(state, switched_at + P, HOSTS, P).keep == (nxt.fingerprint,)


def test_a_lost_ca_key_starts_a_rotation_while_the_served_certificate_works() -> None:
    """A Secret written by cert-manager (no CA key), or one whose key was lost."""
    state, root = settled()
    keyless = dataclasses.replace(state, signing=None)
    plan = decide(keyless, T0 + dt.timedelta(days=1), HOSTS, P)
    assert plan.new_ca and not plan.issue_serving and plan.keep == (root.fingerprint,)


def test_an_expired_serving_certificate_is_replaced_at_once_even_mid_rotation() -> None:
    old, new = ca(T0), ca(T0 + dt.timedelta(days=300))
    stale = serving(old, T0, validity=dt.timedelta(days=1))
    state = State((old, new), new.fingerprint, stale, bundle_live_since=None)
    assert not serving_trusted(state, T0 + dt.timedelta(days=2))
    plan = decide(state, T0 + dt.timedelta(days=2), HOSTS, P)
    assert plan.issue_serving and not plan.new_ca


def test_an_expired_ca_leaves_the_bundle() -> None:
    gone, root = ca(T0 - CA_VALIDITY), ca(T0)
    state = State((gone, root), root.fingerprint, serving(root, T0), T0 - dt.timedelta(days=1))
    plan = decide(state, T0 + dt.timedelta(seconds=1), HOSTS, P)
    assert plan.keep == (root.fingerprint,) and not plan.issue_serving and not plan.new_ca


# --- a whole life, as the reconciler lives it -------------------------------------------


class World:
    """The manager, the API servers and the pods, in the worst case the rules allow for:
    every API server may still use any bundle published within the last ``P`` (and the one
    before), every pod may still serve any serving certificate written within it."""

    def __init__(self) -> None:
        self.state = EMPTY
        self.published: list[tuple[dt.datetime, frozenset[str]]] = []
        self.written: list[tuple[dt.datetime, str | None]] = []

    def reconcile(self, now: dt.datetime) -> dt.datetime | None:
        for _ in range(5):  # the reconciler decides again after each change
            plan = decide(self.state, now, HOSTS, P)
            if not plan.changes(self.state):
                self.check(now)
                return plan.recheck_at
            self.carry_out(plan, now)
        raise AssertionError("the rules do not settle")

    def carry_out(self, plan: Plan, now: dt.datetime) -> None:
        by_fp = {c.fingerprint: c for c in self.state.bundle}
        bundle = [by_fp[f] for f in plan.keep]
        signing = self.state.signing
        if plan.new_ca:
            fresh = ca(now)
            bundle.append(fresh)
            signing = fresh.fingerprint
        current = self.state.serving
        if plan.issue_serving:
            current = serving(signing, now)
            self.written.append((now, signing))
        live = self.state.bundle_live_since
        if [c.fingerprint for c in bundle] != [c.fingerprint for c in self.state.bundle] or (
            live is None
        ):
            live = now
            self.published.append((now, frozenset(c.fingerprint for c in bundle)))
        self.state = State(tuple(bundle), signing, current, live)

    @staticmethod
    def window(history: list[tuple[dt.datetime, T]], now: dt.datetime) -> list[T]:
        """What a reader may still see at ``now``: anything written within ``P``, and the
        last thing written before that."""
        recent = [value for at, value in history if now - P < at <= now]
        older = [value for at, value in history if at <= now - P]
        return recent + older[-1:]

    def check(self, now: dt.datetime) -> None:
        state = self.state
        assert state.serving is not None and not state.serving.certificate.expired(now)
        assert len(state.bundle) <= 3
        bundles = self.window(self.published, now)
        served = self.window(self.written, now)
        first_write = self.written[0][0]
        if now - P < first_write:
            return  # installing: nothing was trusted before
        for issuer in served:
            for bundle in bundles:
                assert issuer in bundle, f"at {now}: {issuer} served, API server trusts {bundle}"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [dt.timedelta(seconds=s) for s in (1, 30, 100, 179, 180, 181, 400)]
                + [dt.timedelta(days=d) for d in (1, 20, 59, 61, 200)]
            ),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_through_renewals_and_requested_rotations_the_api_server_trusts_what_is_served(
    events: list[tuple[dt.timedelta, bool]],
) -> None:
    world = World()
    now = T0
    recheck = world.reconcile(now)
    for delay, rotate in events:
        target = now + delay
        while recheck is not None and recheck <= target:
            now = recheck
            recheck = world.reconcile(now)
        now = target
        if rotate:
            world.state = dataclasses.replace(world.state, rotation_requested=True)
        recheck = world.reconcile(now)
        world.state = dataclasses.replace(world.state, rotation_requested=False)
    # Left alone, it settles within two propagation times on one CA that signed what is
    # served (and then waits for the next renewal).
    settle_by = now + 2 * P
    while recheck is not None and recheck <= settle_by:
        now = recheck
        recheck = world.reconcile(now)
    assert recheck is not None and recheck > settle_by
    state = world.state
    assert state.serving is not None
    assert [c.fingerprint for c in state.bundle] == [state.signing] == [state.serving.issuer]
