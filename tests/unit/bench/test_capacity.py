"""The pure helpers of the capacity benchmark: settings, bodies, CPU and profile shares."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from bench.capacity import (
    BareSetting,
    cpu_seconds,
    endpoints,
    memory_mib,
    process_tree,
    wsgi_share,
)


def test_bare_setting_round_trips() -> None:
    setting = BareSetting.parse("plain:2x8")
    assert (setting.server, setting.workers, setting.threads) == ("plain", 2, 8)
    assert str(setting) == "plain:2x8"


@pytest.mark.parametrize("text", ["gevent:2x8", "plain:2", "plain:ax8"])
def test_bare_setting_refuses_what_it_cannot_run(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        BareSetting.parse(text)


def test_admission_bodies_are_reviews_as_the_api_server_sends_them() -> None:
    for endpoint in endpoints():
        body = json.loads(endpoint.body)
        if endpoint.needs_token:
            assert body["kind"] == "PushReview"
            continue
        request = body["request"]
        assert request["object"]["metadata"]["managedFields"]
        assert {"uid", "kind", "resource", "operation", "userInfo", "options"} <= set(request)


def test_process_tree_and_cpu_of_this_process() -> None:
    assert process_tree(os.getpid())[0] == os.getpid()
    assert cpu_seconds(os.getpid()) > 0
    resident, private = memory_mib(os.getpid())
    assert 0 < private <= resident


def test_wsgi_share_counts_samples_below_flasks_entry() -> None:
    collapsed = (
        "worker;handle;wsgi_app (flask/app.py:1500);view 3\n"
        "worker;handle;SSLSocket.send (ssl.py:1243) 1\n"
    )
    assert wsgi_share(collapsed) == (0.75, 4)
