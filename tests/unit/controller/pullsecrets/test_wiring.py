"""What the pull-secret wiring exports about the tokens it manages."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from controller.metrics import MANAGED_TOKEN_EXPIRY
from controller.pullsecrets.wiring import token_expiry_reader
from quota.objects import Obj
from quota.pullsecrets.refresh import token_time_annotations

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Secrets:
    def __init__(self, *expiries: datetime) -> None:
        self.items: list[Obj] = [
            {"metadata": {"annotations": token_time_annotations(e - timedelta(hours=1), e)}}
            for e in expiries
        ]

    def list(self, namespace: str | None = None) -> list[Obj]:
        return self.items


def test_the_gauge_reads_the_earliest_expiry_of_the_cache_at_each_scrape() -> None:
    secrets = Secrets(T0 + timedelta(minutes=40), T0 + timedelta(minutes=10))
    MANAGED_TOKEN_EXPIRY.set_function(token_expiry_reader(secrets))
    name = "registry_v2_policy_managed_token_earliest_expiry_timestamp_seconds"
    assert REGISTRY.get_sample_value(name) == (T0 + timedelta(minutes=10)).timestamp()
    secrets.items = secrets.items[:1]  # the early one was refreshed away
    assert REGISTRY.get_sample_value(name) == (T0 + timedelta(minutes=40)).timestamp()


def test_without_managed_tokens_the_earliest_expiry_is_never() -> None:
    assert token_expiry_reader(Secrets())() == math.inf
