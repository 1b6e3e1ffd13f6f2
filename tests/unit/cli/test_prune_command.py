"""``prune images`` on the command line: the agreed flags and their defaults, a Go
duration refused by name, ``--prune-registry`` without its registry refused before
anything runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cli import main as cli
from cli.configs import prune_config
from quota.imagepruner.cronjob import PrunerSettings, desired_cronjob


def parsed(*argv: str) -> object:
    args, _ = cli.parse(["prune", "images", *argv], {})
    return args


def test_the_defaults_are_oc_adm_prune_images() -> None:
    config = prune_config(parsed())  # type: ignore[arg-type]
    assert config.confirm is False
    assert config.policy.keep_tag_revisions == 3
    assert config.policy.keep_younger_than == timedelta(minutes=60)
    assert (config.ignore_invalid_refs, config.prune_registry) == (False, False)
    assert config.upstream is None


def test_the_agreed_flags_reach_the_configuration() -> None:
    config = prune_config(
        parsed(  # type: ignore[arg-type]
            "--confirm",
            "--keep-tag-revisions=5",
            "--keep-younger-than=1h30m",
            "--ignore-invalid-refs",
            "--prune-registry",
            "--registry-config=/etc/registry/config.yml",
            "--upstream-registry=https://registry.example:5000",
            "--upstream-ca-file=/ca.crt",
        )
    )
    assert config.confirm and config.ignore_invalid_refs and config.prune_registry
    assert config.policy.keep_tag_revisions == 5
    assert config.policy.keep_younger_than == timedelta(hours=1, minutes=30)
    assert config.upstream is not None and config.upstream.url == "https://registry.example:5000"


def test_a_duration_go_would_refuse_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parsed("--keep-younger-than=1d")
    assert exited.value.code == 2
    assert "--keep-younger-than: expected a Go duration" in capsys.readouterr().err


def test_a_duration_past_go_s_longest_is_a_usage_error_not_a_crash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parsed("--keep-younger-than=99999999999999h")
    assert exited.value.code == 2
    assert "--keep-younger-than: '99999999999999h' is longer than Go's longest" in (
        capsys.readouterr().err
    )


def test_prune_registry_needs_the_registry_configuration() -> None:
    args = parsed("--confirm", "--prune-registry")
    assert "--registry-config" in (cli.usage_problem(args, "prune images") or "")  # type: ignore[arg-type]
    assert cli.usage_problem(parsed("--confirm"), "prune images") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [
        PrunerSettings(namespace="ns", image="i"),
        PrunerSettings(
            namespace="ns",
            image="i",
            upstream_registry="https://registry.example:5000",
            upstream_ca_file="/upstream-ca/ca.crt",
            upstream_ca_configmap="upstream-ca",
        ),
    ],
    ids=["alone", "with-upstream"],
)
def test_the_command_line_the_cronjob_renders_is_one_this_command_accepts(
    settings: PrunerSettings,
) -> None:
    pruner = {"metadata": {"name": "cluster", "uid": "u"}, "spec": {}}
    args = desired_cronjob(pruner, settings)["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]

    parsed_args, _ = cli.parse(args, {})

    assert cli.command_name(parsed_args) == "prune images"
    assert cli.usage_problem(parsed_args, "prune images") is None
