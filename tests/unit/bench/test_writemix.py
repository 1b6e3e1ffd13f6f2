"""The write-mix benchmark's pure helpers: the schedule and the no-op registration."""

from __future__ import annotations

from collections import Counter

from bench.writemix import MIX, NOOP, noop_configurations, schedule


def test_each_round_makes_every_write_of_the_mix_its_weight_times() -> None:
    writes = schedule(3)
    assert Counter(w.name for w in writes) == {w.name: 3 * w.weight for w in MIX}
    one_round = [w.name for w in writes[: len(writes) // 3]]
    assert one_round != sorted(one_round, key=[w.name for w in MIX].index)  # interleaved


def test_the_no_op_webhook_is_sent_every_write_of_its_namespace() -> None:
    mutating, validating = noop_configurations("https://x", b"ca")
    hooks = {h["name"]: h for h in mutating["webhooks"] + validating["webhooks"]}
    for hook in hooks.values():
        assert hook["namespaceSelector"]["matchExpressions"] == [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NOOP]}
        ]
    assert "matchConditions" not in hooks["noop-imagestreams.webhook.image.alauda.io"]
    assert "matchConditions" not in hooks["noop-serviceaccounts.webhook.image.alauda.io"]
