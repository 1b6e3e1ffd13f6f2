"""Leader election on a ``coordination.k8s.io/v1`` Lease, like client-go's leaderelection.

Several controller replicas may run; only the holder of the Lease writes. The decision of
what to write is a pure function (``decide``, ``release_spec``); ``LeaderElector`` is the
loop around it that reads and writes the Lease with optimistic concurrency, so two
replicas racing for a free Lease cannot both win: the loser's write gets ``409 Conflict``.

Expiry is judged like client-go: by when *this* process last saw the Lease record change,
plus its ``leaseDurationSeconds``, not by the holder's ``renewTime``, so clock skew between
replicas cannot make a live leader look expired. The pure core falls back to
``renewTime`` when no observation time is given.
"""

from __future__ import annotations

import copy
import enum
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube import apierrors, metrics
from quota.timestamps import format_micro_time, parse_rfc3339, require_aware

log = logging.getLogger(__name__)

Spec = dict[str, Any]


class LeaseAction(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # free or expired Lease held by another: take it over
    RENEW = "renew"  # we hold it: bump renewTime
    WAIT = "wait"  # someone else holds a live Lease


@dataclass(frozen=True)
class LeaseDecision:
    action: LeaseAction
    spec: Spec | None
    """The full Lease spec to write; None for WAIT."""
    holder: str
    """The holder before this decision ("" when free or absent)."""


def decide(
    lease: Mapping[str, Any] | None,
    identity: str,
    now: datetime,
    lease_duration: int,
    *,
    observed_at: datetime | None = None,
) -> LeaseDecision:
    """What to do with ``lease`` (None: it does not exist) for ``identity`` at ``now``.

    ``lease_duration`` (seconds) is what we write; a Lease's validity uses its own
    ``leaseDurationSeconds``. It is live while ``since + duration > now``, where ``since``
    is ``observed_at`` (when we first saw this record) or else its ``renewTime``.
    """
    if not identity:
        raise ValueError("identity must not be empty")
    if lease_duration < 1:
        raise ValueError("lease_duration must be at least 1 second")
    require_aware(now=now)
    stamp = format_micro_time(now)
    if lease is None:
        spec = _held_spec(identity, lease_duration, acquired=stamp, renewed=stamp, transitions=0)
        return LeaseDecision(LeaseAction.CREATE, spec, "")
    current = lease.get("spec") or {}
    holder = current.get("holderIdentity") or ""
    transitions = _non_negative_int(current.get("leaseTransitions"))
    if holder == identity:
        acquired = current.get("acquireTime") or stamp
        spec = _held_spec(identity, lease_duration, acquired, stamp, transitions)
        return LeaseDecision(LeaseAction.RENEW, spec, holder)
    if holder and _is_live(current, now, lease_duration, observed_at):
        return LeaseDecision(LeaseAction.WAIT, None, holder)
    spec = _held_spec(identity, lease_duration, stamp, stamp, transitions + 1)
    return LeaseDecision(LeaseAction.ACQUIRE, spec, holder)


def release_spec(lease: Mapping[str, Any] | None, identity: str, now: datetime) -> Spec | None:
    """The spec that gives the Lease up on graceful shutdown, or None if we do not hold it.

    As client-go's ReleaseOnCancel: no holder and a one-second duration, so any replica
    (a restarted one too) takes over at once; the transitions count is kept.
    """
    require_aware(now=now)
    if lease is None or not identity:
        return None
    current = lease.get("spec") or {}
    if (current.get("holderIdentity") or "") != identity:
        return None
    stamp = format_micro_time(now)
    transitions = _non_negative_int(current.get("leaseTransitions"))
    return _held_spec("", 1, stamp, stamp, transitions)


def default_identity() -> str:
    """Host name plus a random suffix: unique even when a pod restarts under the same name."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _held_spec(holder: str, duration: int, acquired: str, renewed: str, transitions: int) -> Spec:
    return {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": acquired,
        "renewTime": renewed,
        "leaseTransitions": transitions,
    }


def _is_live(
    spec: Mapping[str, Any], now: datetime, default_duration: int, observed_at: datetime | None
) -> bool:
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        duration = default_duration
    since = observed_at or parse_rfc3339(spec.get("renewTime"))
    if since is None:
        return False  # a holder that never renewed: nothing says it is alive
    return since + timedelta(seconds=duration) > now


def _non_negative_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


@runtime_checkable
class LeaseApi(Protocol):
    """The three calls of ``kubernetes.client.CoordinationV1Api`` the elector uses."""

    def read_namespaced_lease(self, name: str, namespace: str, **kwargs: Any) -> Any: ...
    def create_namespaced_lease(self, namespace: str, body: Any, **kwargs: Any) -> Any: ...
    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, **kwargs: Any
    ) -> Any: ...


class _Outcome(enum.Enum):
    HELD = "held"  # we hold the Lease now
    NOT_HELD = "not held"  # someone else does (or took it from us)
    FAILED = "failed"  # the API call failed: do not know, retry


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _event_wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` and runs a callback while holding it.

    ``clock`` gives the (aware) wall time written into the Lease, ``monotonic`` measures
    the renew deadline, ``wait(event, seconds)`` pauses between attempts and returns
    whether ``event`` is set; all three are injectable for deterministic tests.
    """

    def __init__(
        self,
        api_client: client.ApiClient | LeaseApi,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] = _event_wait,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        # The leader must give up (renew_deadline) before others may take over
        # (lease_duration), and must get more than one try before giving up.
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self._api: LeaseApi = (
            api_client if isinstance(api_client, LeaseApi) else client.CoordinationV1Api(api_client)
        )
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._clock = clock
        self._monotonic = monotonic
        self._wait = wait
        self._observed_record: str | None = None
        self._observed_at: datetime | None = None
        self._renewed_at: float | None = None  # monotonic start of the last successful write
        self._last_holder: str | None = None  # to log a new holder once, not every period
        self._leading = threading.Event()
        self._set_leading(False)

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def renewal_problem(self) -> str | None:
        """Why this leader is unhealthy, or None: it last renewed the Lease longer ago than
        the Lease lasts, so another replica may lead while this one still writes. A healthy
        loop steps down well before (``renew_deadline``); this catches the loop wedged."""
        renewed_at = self._renewed_at
        if not self.is_leader or renewed_at is None:
            return None
        age = self._monotonic() - renewed_at
        if age <= self._lease_duration:
            return None
        return (
            f"leader of lease {self.namespace}/{self.name} last renewed it {age:.0f}s ago, "
            f"past its {self._lease_duration}s duration"
        )

    def _set_leading(self, leading: bool) -> None:
        if leading:
            self._leading.set()
        else:
            self._leading.clear()
        metrics.LEADER_STATUS.labels(self.name).set(1 if leading else 0)

    def run(
        self,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        """Campaign, lead, and campaign again after losing the Lease, until ``stop``.

        ``on_started_leading(lost)`` runs in its own thread; ``lost`` is set when this term
        ends, and the callback must then stop writing and return. ``on_stopped_leading``
        is called once per term when we are no longer the leader. A new term starts only
        after the previous callback returned, so two terms never overlap.
        """
        while not stop.is_set():
            if self._try_acquire_or_renew(leading=False) is _Outcome.HELD:
                self._lead(on_started_leading, on_stopped_leading, stop)
            elif self._wait(stop, self._retry_period):
                break

    def _lead(
        self,
        on_started_leading: Callable[[threading.Event], None],
        on_stopped_leading: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        log.info("%s became the leader (lease %s/%s)", self.identity, self.namespace, self.name)
        self._set_leading(True)
        lost = threading.Event()
        finished = threading.Event()
        worker = threading.Thread(
            target=_run_callback,
            args=(on_started_leading, lost, finished),
            name=f"leader-{self.name}",
            daemon=True,
        )
        worker.start()
        held = True
        while True:
            if self._wait(stop, self._retry_period) or finished.is_set():
                break
            held = self._renew()
            if not held:
                break
        lost.set()
        if not held:
            log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.name)
            self._set_leading(False)
            on_stopped_leading()
            # No new term while the old callback may still write.
            while not self._wait(finished, self._retry_period):
                if stop.is_set():
                    return
            return
        if finished.is_set():
            log.warning("leader callback returned while leading; stepping down")
        else:
            log.info("%s stepping down; waiting for the leader callback", self.identity)
        self._wind_down(finished)
        if finished.is_set():
            self._release()
        else:
            log.warning("leader callback did not return; the lease will expire instead")
        self._set_leading(False)
        on_stopped_leading()

    def _wind_down(self, finished: threading.Event) -> None:
        """Keep the Lease while the callback finishes, for up to ``renew_deadline``."""
        start = self._monotonic()
        while not self._wait(finished, self._retry_period):
            if self._monotonic() - start >= self._renew_deadline or not self._renew():
                return

    def _renew(self) -> bool:
        """One renewal attempt; False once we surely or possibly no longer hold the Lease."""
        outcome = self._try_acquire_or_renew(leading=True)
        if outcome is _Outcome.HELD:
            return True
        if outcome is _Outcome.NOT_HELD:
            return False
        assert self._renewed_at is not None
        return self._monotonic() - self._renewed_at < self._renew_deadline

    def _request_timeout(self, leading: bool) -> float | None:
        """While leading, no call may outlast the renew deadline; None: already past it."""
        if not leading or self._renewed_at is None:
            return self._renew_deadline
        remaining = self._renewed_at + self._renew_deadline - self._monotonic()
        return remaining if remaining > 0 else None

    def _try_acquire_or_renew(self, *, leading: bool) -> _Outcome:
        started = self._monotonic()
        try:
            lease = self._read(leading)
            now = self._clock()
            self._observe(lease, now)
            observed_at = self._observed_at if lease is not None else None
            decision = decide(
                lease, self.identity, now, self._lease_duration, observed_at=observed_at
            )
            # A leader that finds the Lease gone, free or taken has lost it, even if it could
            # write it now: another replica may already lead.
            if decision.spec is None or (leading and decision.action is not LeaseAction.RENEW):
                if leading or decision.holder != self._last_holder:
                    log.info(
                        "lease %s/%s is held by %r", self.namespace, self.name, decision.holder
                    )
                self._last_holder = decision.holder
                return _Outcome.NOT_HELD
            self._write(lease, decision.spec, leading)
        except _Timeout:
            return _Outcome.FAILED
        except ApiException as err:
            # Another replica wrote first (our create found the Lease, or our replace carried
            # a stale resourceVersion); it won this round.
            lost = apierrors.is_already_exists(err) or apierrors.is_conflict(err)
            level = logging.DEBUG if lost else logging.WARNING
            log.log(level, "lease %s/%s: API error %s", self.namespace, self.name, err.status)
            return _Outcome.FAILED
        except Exception as err:  # network errors and the like: the loop must go on
            log.warning("lease %s/%s: %s: %s", self.namespace, self.name, type(err).__name__, err)
            return _Outcome.FAILED
        self._renewed_at = started
        self._last_holder = self.identity
        if decision.action is not LeaseAction.RENEW:
            log.info(
                "%s: %s lease %s/%s (transitions %s)",
                self.identity,
                decision.action.value,
                self.namespace,
                self.name,
                decision.spec["leaseTransitions"],
            )
        return _Outcome.HELD

    def _read(self, leading: bool) -> dict[str, Any] | None:
        try:
            response = self._api.read_namespaced_lease(
                self.name,
                self.namespace,
                _preload_content=False,
                _request_timeout=self._timeout_or_raise(leading),
            )
        except ApiException as err:
            if apierrors.is_not_found(err):
                return None
            raise
        lease: dict[str, Any] = json.loads(response.data)
        return lease

    def _write(self, lease: dict[str, Any] | None, spec: Spec, leading: bool) -> None:
        timeout = self._timeout_or_raise(leading)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            response = self._api.create_namespaced_lease(
                self.namespace, body, _preload_content=False, _request_timeout=timeout
            )
        else:
            # The read metadata carries resourceVersion: a concurrent writer makes this a
            # Conflict.
            body = copy.deepcopy(lease)
            body["spec"] = spec
            response = self._api.replace_namespaced_lease(
                self.name, self.namespace, body, _preload_content=False, _request_timeout=timeout
            )
        _ = response.data  # read the body so the connection returns to the pool
        # Our own write is the newest record we have seen.
        self._observed_record = _fingerprint(spec)
        self._observed_at = self._clock()

    def _release(self) -> None:
        try:
            lease = self._read(leading=False)
            spec = release_spec(lease, self.identity, self._clock())
            if spec is None:
                return
            self._write(lease, spec, leading=False)
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as err:
            log.warning("releasing lease %s/%s failed: %s", self.namespace, self.name, err)

    def _timeout_or_raise(self, leading: bool) -> float:
        timeout = self._request_timeout(leading)
        if timeout is None:
            raise _Timeout
        return timeout

    def _observe(self, lease: Mapping[str, Any] | None, now: datetime) -> None:
        record = None if lease is None else _fingerprint(lease.get("spec") or {})
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = now


class _Timeout(Exception):
    """The renew deadline passed before the call could be made."""


def _fingerprint(spec: Mapping[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def _run_callback(
    callback: Callable[[threading.Event], None], lost: threading.Event, finished: threading.Event
) -> None:
    try:
        callback(lost)
    except Exception:
        log.exception("leader callback failed")
    finally:
        finished.set()
