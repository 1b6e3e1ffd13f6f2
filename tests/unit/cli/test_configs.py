"""Each process's typed configuration, built from its parsed flags."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cli import configs
from cli.main import parse
from controller.config import UpstreamRegistryConfig
from quota.imagepruner.cronjob import PrunerSettings


def test_serve_never_admits_its_own_namespace_nor_kube_system_nor_the_configured_ones() -> None:
    serving, webhook = configs.serve_configs(
        parse(["serve", "--namespace=ours", "--excluded-namespace=a", "--dev-certs-dir=d"], {})[0]
    )
    assert webhook.excluded_namespaces == ("ours", "kube-system", "a")
    assert webhook.namespace == "ours"
    assert serving.process == "serve"
    assert "image-registry-webhook.ours.svc" in serving.certificate_hosts


def test_serve_asks_for_client_certificates_only_with_a_client_ca() -> None:
    serving, _ = configs.serve_configs(parse(["serve", "--client-ca-file=/ca"], {})[0])
    assert serving.client_ca_file == Path("/ca")
    serving, _ = configs.serve_configs(parse(["serve"], {})[0])
    assert serving.client_ca_file is None


def test_the_front_doors_development_certificate_names_the_registry_its_clients_use() -> None:
    serving, door = configs.frontdoor_configs(
        parse(["frontdoor", "--upstream-registry=https://up", "--token-audiences=r"], {})[0]
    )
    assert serving.process == "frontdoor"
    assert serving.bind == "0.0.0.0:5000"
    assert set(serving.certificate_hosts) >= {
        "localhost",
        "image-registry.image-registry-system.svc",
        "image-registry.image-registry-system.svc.cluster.local",
    }
    assert (door.upstream_registry, door.token_audiences) == ("https://up", ("r",))
    assert door.internal_registry == "image-registry.image-registry-system.svc:5000"


def test_the_controller_leaves_certificates_and_registry_tags_alone_unless_told() -> None:
    config = configs.controller_config(parse(["controller", "--manage-certificates=false"], {})[0])
    assert (config.certificates, config.upstream) == (None, None)
    config = configs.controller_config(
        parse(["controller", "--upstream-registry=https://up", "--upstream-ca-file=/ca"], {})[0]
    )
    assert config.upstream == UpstreamRegistryConfig("https://up", Path("/ca"))
    assert config.certificates is not None
    assert config.certificates.propagation == dt.timedelta(seconds=180)
    assert "image-registry-webhook.image-registry-system.svc" in config.certificates.hosts


def test_the_controllers_pull_secrets_take_the_registry_names_and_the_exclusions() -> None:
    config = configs.controller_config(
        parse(
            [
                "controller",
                "--internal-registry=reg.ns.svc:5000",
                "--extra-registry-hostname=r.example.com",
                "--excluded-namespace=a",
                "--token-lifetime-seconds=900",
                "--reconcile-workers=3",
            ],
            {"POD_NAMESPACE": "ours"},
        )[0]
    )
    pull = config.pull_secrets
    assert pull.internal_hostnames == ("reg.ns.svc:5000", "reg.ns.svc.cluster.local:5000")
    assert pull.extra_hostnames == ("r.example.com",)
    assert pull.excluded_namespaces == {"ours", "kube-system", "a"}
    assert (pull.token_lifetime_seconds, pull.token_audiences) == (
        900,
        ("image-registry.alauda.io",),
    )
    assert (config.namespace, config.reconcile.reconcile_workers) == ("ours", 3)


def _registry_hosts(internal_registry: str) -> set[str]:
    serving, _ = configs.frontdoor_configs(
        parse(
            [
                "frontdoor",
                "--upstream-registry=https://up",
                f"--internal-registry={internal_registry}",
            ],
            {},
        )[0]
    )
    return set(serving.certificate_hosts) - {"127.0.0.1", "localhost", "::1"}


def test_the_front_doors_certificate_names_a_portless_internal_registry_as_given() -> None:
    assert _registry_hosts("registry.example.com") == {"registry.example.com"}


def test_the_front_doors_certificate_names_the_internal_registry_without_its_port() -> None:
    assert _registry_hosts("registry.example.com:5000") == {"registry.example.com"}
    assert _registry_hosts("reg.ns.svc:5000") == {"reg.ns.svc", "reg.ns.svc.cluster.local"}
    assert _registry_hosts("[fd00::1]:5000") == {"fd00::1"}


def test_the_controller_renders_the_pruner_only_with_its_image() -> None:
    config = configs.controller_config(parse(["controller"], {})[0])
    assert config.pruner is None
    config = configs.controller_config(
        parse(
            [
                "controller",
                "--upstream-registry=https://up",
                "--upstream-ca-file=/upstream-ca/ca.crt",
                "--pruner-upstream-ca-configmap=upstream-ca",
            ],
            {"POD_NAMESPACE": "ours", "REGISTRY_WEBHOOK_PRUNER_IMAGE": "reg/policy:1"},
        )[0]
    )
    assert config.pruner == PrunerSettings(
        namespace="ours",
        image="reg/policy:1",
        upstream_registry="https://up",
        upstream_ca_file="/upstream-ca/ca.crt",
        upstream_ca_configmap="upstream-ca",
    )
