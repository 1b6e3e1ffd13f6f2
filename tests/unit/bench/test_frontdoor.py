"""The front door benchmark's pure helpers: /proc parsing, the process tree, rates and
the profile's shares."""

from __future__ import annotations

import os

from bench.frontdoor import (
    PROFILE_STEPS,
    collapsed_shares,
    cpu_seconds,
    descendants,
    mb_per_second,
    parent_of,
    tree_cpu_seconds,
)

# proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
# cmajflt utime stime cutime cstime ...; a command name may hold spaces and parens.
STAT = "4242 (gunicorn: w (x) 1) S 4200 4200 4200 0 -1 4194560 10 0 0 0 250 50 7 9 20 0 3"


def test_cpu_seconds_are_user_plus_system_ticks_after_the_command_name() -> None:
    assert cpu_seconds(STAT, 100) == 3.0
    assert parent_of(STAT) == 4200


def test_the_tree_holds_every_descendant_and_nothing_else() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert descendants(10, parents) == {10, 11, 12, 13}
    assert descendants(13, parents) == {13}


def test_this_process_tree_has_spent_some_cpu() -> None:
    assert tree_cpu_seconds(os.getpid()) > 0


def test_rates_are_decimal_megabytes_per_second() -> None:
    assert mb_per_second(256 * 2**20, 2.0) == 134.217728


def test_shares_are_of_the_samples_serving_requests_through_each_step() -> None:
    collapsed = [
        "process 1;W.handle (w.py:1);request_body (upstream.py:5);read (x.py:1) 30",
        "process 1;W.handle (w.py:1);C.send (client.py:9) 60",
        "process 1;W.handle (w.py:1);C.send_all (client.py:9) 10",
        "process 1;Informer.run (informer.py:3);C.send (client.py:9) 500",
        "garbage",
    ]
    steps = {"body": "request_body", "up": "C.send", "never": "nowhere"}
    shares = collapsed_shares(collapsed, steps, "W.handle")
    assert shares == {"body": 0.3, "up": 0.6, "never": 0.0}
    assert collapsed_shares([], steps, "W.handle") == dict.fromkeys(steps, 0.0)


def test_every_phase_profiled_names_its_steps() -> None:
    assert set(PROFILE_STEPS) == {"push", "pull", "manifests"}
