"""The install manifests: the kustomize base and its overlays, rendered by kubectl's
built-in kustomize (what ``kubectl apply -k`` applies) and checked by the real API server
with a server-side dry-run, so what a platform team applies is accepted as written; then
the rendered objects are held to what they promise. No Pod runs here: this shows the
objects are valid and say the right things, not that a scheduler or a CNI honours them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from cli import main as cli_main
from cli.options import COMMAND_FLAGS
from localcluster.binaries import REPO_ROOT
from serving.tlsserver import TlsServer
from tests.integration.support.cluster import MANIFESTS, ClusterEnv

VARIANTS = {
    "base": MANIFESTS / "base",
    "standalone": MANIFESTS / "overlays" / "standalone",
    "cert-manager": MANIFESTS / "overlays" / "cert-manager",
    "monitoring": MANIFESTS / "overlays" / "monitoring",
    "frontdoor": MANIFESTS / "overlays" / "frontdoor",
}
"""Every kustomization a platform team applies as it is."""
COMPOSED = {
    "resources": ["base", "crds"],
    "components": [
        "components/cert-manager",
        "components/monitoring",
        "components/frontdoor",
        "components/node-ca",
    ],
}
"""A team's own overlay that takes everything at once (docs/install.md shows it)."""
ADDON_CRDS_SCRIPT = REPO_ROOT / "hack" / "fetch-addon-crds.sh"
ADDON_GROUPS = {"cert-manager.io", "monitoring.coreos.com"}
"""API groups of the add-ons two components use; their CRDs come from the script."""
ESTABLISHED_SECONDS = 60
"""A new CRD being served: about a second; the stack's own CRDs get the same minute."""
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = "registry-v2/policy"
PART_OF = "registry-v2"
WORKLOADS = {
    "image-registry-webhook": "webhook",
    "image-registry-controller": "controller",
}
"""Deployment (and app.kubernetes.io/name) -> app.kubernetes.io/component."""
OPTIONAL_WORKLOADS = {"image-registry-frontdoor": "frontdoor"}
"""The same, for workloads of a component (the variants that include it)."""
WORKLOAD_KINDS = ("Deployment", "DaemonSet")
"""What runs the image: its tag and its flags are held to the release and the command."""

Document = dict[str, Any]


def render(cluster: ClusterEnv, directory: Path) -> list[Document]:
    out = cluster.kubectl("kustomize", str(directory)).stdout
    return [document for document in yaml.safe_load_all(out) if document]


@pytest.fixture(scope="module")
def rendered(
    cluster: ClusterEnv, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Document]]:
    composed = tmp_path_factory.mktemp("composed")
    # kustomize takes relative paths only.
    kustomization = {
        key: [os.path.relpath(MANIFESTS / path, composed) for path in paths]
        for key, paths in COMPOSED.items()
    }
    (composed / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    variants = {**VARIANTS, "composed": composed}
    return {variant: render(cluster, directory) for variant, directory in variants.items()}


def group_of(document: Document) -> str:
    return str(document["apiVersion"]).rpartition("/")[0]


@pytest.fixture(scope="module")
def addon_crds(cluster: ClusterEnv, rendered: dict[str, list[Document]]) -> Iterator[None]:
    """The CRDs of the add-on kinds the manifests use, installed for this module only; a
    cluster that already has them (cert-manager, the Prometheus Operator) keeps its own."""
    kinds = {
        (group_of(d), d["kind"])
        for documents in rendered.values()
        for d in documents
        if group_of(d) in ADDON_GROUPS
    }
    cache = subprocess.run(
        ["bash", str(ADDON_CRDS_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout.splitlines()[-1]
    # One CRD a file. BaseLoader: some of their schemas hold YAML 1.1 oddities ("=")
    # that the safe loader refuses; only a few strings are read here.
    crds = {
        path: crd
        for path in sorted(Path(cache).glob("*/*.yaml"))
        for crd in [yaml.load(path.read_text(), Loader=yaml.BaseLoader)]
        if (crd["spec"]["group"], crd["spec"]["names"]["kind"]) in kinds
    }
    assert {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in crds.values()} == kinds
    present = set(cluster.kubectl("get", "crd", "-o", "name").stdout.split())
    missing = {path: api_name(crd) for path, crd in crds.items() if api_name(crd) not in present}
    if missing:
        # create, not apply: some are larger than the last-applied annotation may be.
        cluster.kubectl("create", *(f"--filename={path}" for path in missing))
        wait = ("wait", "--for=condition=Established", f"--timeout={ESTABLISHED_SECONDS}s")
        cluster.kubectl(*wait, *missing.values())
    yield
    if missing:
        cluster.kubectl("delete", "--wait=false", *missing.values(), check=False)


def api_name(document: Document) -> str:
    """``kind.group/name``, as ``kubectl -o name`` prints it."""
    group = group_of(document)
    kind = document["kind"].lower() + (f".{group}" if group else "")
    return f"{kind}/{document['metadata']['name']}"


def one(documents: list[Document], kind: str, name: str) -> Document:
    [document] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return document


@pytest.mark.usefixtures("addon_crds")
@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "composed"])
def test_every_variant_is_accepted_by_the_api_server(
    cluster: ClusterEnv, rendered: dict[str, list[Document]], variant: str
) -> None:
    """The local stack registers its webhooks by URL under the same names; the manifests'
    copies (by Service) are checked under other names, so no merge with them is judged."""
    documents = copy.deepcopy(rendered[variant])
    for document in documents:
        if document["kind"].endswith("WebhookConfiguration"):
            document["metadata"]["name"] += "-manifest-check"
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-o", "name", "-f", "-",
        input=yaml.safe_dump_all(documents),
    )  # fmt: skip
    assert sorted(result.stdout.split()) == sorted(api_name(d) for d in documents)


def test_the_standalone_variant_adds_the_crds_to_the_base(
    rendered: dict[str, list[Document]],
) -> None:
    base = {api_name(d) for d in rendered["base"]}
    standalone = {api_name(d) for d in rendered["standalone"]}
    assert standalone - base == {
        f"customresourcedefinition.apiextensions.k8s.io/{path.name.removesuffix('.yaml')}"
        for path in (MANIFESTS / "crds").glob("*.*.yaml")
    }


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "composed"])
def test_the_image_tag_and_the_version_label_are_the_release(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    documents = rendered[variant]
    images = {
        container["image"]
        for d in documents
        if d["kind"] in WORKLOAD_KINDS
        for container in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{IMAGE}:{VERSION}"}
    for document in documents:
        assert document["metadata"]["labels"]["app.kubernetes.io/version"] == VERSION, api_name(
            document
        )


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "composed"])
def test_every_object_carries_the_standard_labels_and_selectors_stay_stable(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    """A Deployment's selector is immutable: it names the workload and nothing that
    changes with a release, or an upgrade would have to delete and re-create it."""
    documents = rendered[variant]
    for document in documents:
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == PART_OF
    names = {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"}
    optional = {n: c for n, c in OPTIONAL_WORKLOADS.items() if n in names}
    assert names == set(WORKLOADS) | set(optional)
    for name, component in {**WORKLOADS, **optional}.items():
        deployment = one(documents, "Deployment", name)
        workload = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
        for labels in (
            deployment["metadata"]["labels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        ):
            assert workload.items() <= labels.items()
            assert labels["app.kubernetes.io/version"] == VERSION
        assert deployment["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": name}}
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for document in (d for d in documents if d["kind"] == kind):
            selector = document["spec"].get("selector") or document["spec"]["podSelector"]
            selector = selector.get("matchLabels", selector)
            assert "app.kubernetes.io/version" not in selector, api_name(document)


def test_the_network_policy_admits_only_the_webhook_port(
    cluster: ClusterEnv, rendered: dict[str, list[Document]]
) -> None:
    policy_document = one(rendered["base"], "NetworkPolicy", "image-registry-webhook")
    policy = json.loads(
        cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            input=yaml.safe_dump(policy_document),
        ).stdout
    )  # fmt: skip
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "image-registry-webhook"}
    }
    ports = [port for rule in policy["spec"]["ingress"] for port in rule["ports"]]
    assert ports == [{"protocol": "TCP", "port": 8443}]
    # From any source: the API server's address is the cluster's, not the manifests' to
    # guess (a wrong range fails every admission); narrowing is the documented opt-in.
    assert [rule.get("from") for rule in policy["spec"]["ingress"]] == [None]


def documented_patch(heading: str) -> Document:
    """The first YAML block after ``heading`` in docs/install.md."""
    text = (REPO_ROOT / "docs" / "install.md").read_text()
    after = text[text.index(heading) :]
    block = after[after.index("```yaml\n") + len("```yaml\n") :]
    loaded: Document = yaml.safe_load(block[: block.index("```")])
    return loaded


def test_the_documented_narrowing_admits_the_control_plane_and_the_registry_only(
    cluster: ClusterEnv, tmp_path: Path
) -> None:
    """What docs/install.md tells a team to add, applied to the base as written."""
    overlay = {
        "resources": [os.path.relpath(MANIFESTS / "base", tmp_path)],
        **documented_patch("**NetworkPolicy (everywhere).**"),
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    document = one(render(cluster, tmp_path), "NetworkPolicy", "image-registry-webhook")
    policy = json.loads(
        cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            input=yaml.safe_dump(document),
        ).stdout
    )  # fmt: skip
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
    sources = rule["from"]
    assert [s["ipBlock"]["cidr"] for s in sources if "ipBlock" in s] == ["10.0.0.0/24"]
    [registry] = [s for s in sources if "podSelector" in s]
    assert registry["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "image-registry"}}


@pytest.mark.parametrize("variant", ["frontdoor", "composed"])
def test_no_policy_keeps_nodes_from_pulling_through_the_front_door(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    """The kubelet pulls from the node's network, not from a pod: any ingress policy that
    selects the front door pods must admit its port from every source."""
    documents = rendered[variant]
    door = pod_spec(documents, "image-registry-frontdoor")
    labels = one(documents, "Deployment", "image-registry-frontdoor")["spec"]["template"][
        "metadata"
    ]["labels"]
    port = container_ports(door)["https"]
    for policy in (d for d in documents if d["kind"] == "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        assert "Ingress" in policy["spec"]["policyTypes"]
        assert any(
            "from" not in rule
            and any(p.get("port") in (port, "https") for p in rule.get("ports", [{"port": port}]))
            for rule in policy["spec"].get("ingress", [])
        ), api_name(policy)


# --- the webhook, which must stay available: its ImageStream and policy hooks Fail closed


def pod_spec(documents: list[Document], deployment: str) -> Document:
    spec: Document = one(documents, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container_ports(pod: Document) -> dict[str, int]:
    [container] = pod["containers"]
    return {port["name"]: port["containerPort"] for port in container["ports"]}


def test_the_webhook_keeps_a_replica_through_a_node_drain_and_a_rollout(
    rendered: dict[str, list[Document]],
) -> None:
    documents = rendered["base"]
    spec = one(documents, "Deployment", "image-registry-webhook")["spec"]
    selector = spec["selector"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    by_node = spread["kubernetes.io/hostname"]
    assert (by_node["maxSkew"], by_node["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    assert by_node["labelSelector"] == selector
    assert pod["priorityClassName"] == "system-cluster-critical"
    budget = one(documents, "PodDisruptionBudget", "image-registry-webhook")["spec"]
    assert budget["selector"] == selector
    assert 1 <= budget["minAvailable"] < spec["replicas"]


ENDPOINT_PROPAGATION_SECONDS = 10
"""A terminating pod's EndpointSlice update reaching the API server's webhook client and
kube-proxy: a few seconds on a busy control plane. The preStop pause must outlast it."""


def test_the_webhook_leaves_the_service_before_it_stops_answering(
    rendered: dict[str, list[Document]],
) -> None:
    """preStop pause, then SIGTERM and gunicorn's graceful drain of in-flight reviews; the
    kubelet's SIGKILL must come after both."""
    pod = pod_spec(rendered["base"], "image-registry-webhook")
    [container] = pod["containers"]
    sleep, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    assert int(seconds) >= ENDPOINT_PROPAGATION_SECONDS
    server = TlsServer(
        lambda: Flask(__name__), bind="127.0.0.1:0", cert_file="-", key_file="-",
        workers=1, threads=1,
    )  # fmt: skip
    assert pod["terminationGracePeriodSeconds"] > int(seconds) + server.cfg.graceful_timeout


def probe(container: Document, kind: str) -> tuple[str, str | int, str]:
    get = container[kind]["httpGet"]
    return get["path"], get["port"], get.get("scheme", "HTTP")


def test_the_webhook_is_probed_on_its_tls_port_and_serves_metrics_apart(
    rendered: dict[str, list[Document]],
) -> None:
    pod = pod_spec(rendered["base"], "image-registry-webhook")
    [container] = pod["containers"]
    assert container_ports(pod) == {"https": 8443, "metrics": 8080}
    assert probe(container, "startupProbe") == ("/healthz", "https", "HTTPS")
    assert probe(container, "livenessProbe") == ("/healthz", "https", "HTTPS")
    assert probe(container, "readinessProbe") == ("/readyz", "https", "HTTPS")


def test_the_webhook_serves_the_certificate_of_its_secret(
    rendered: dict[str, list[Document]],
) -> None:
    pod = pod_spec(rendered["base"], "image-registry-webhook")
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "tls"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "image-registry-webhook-tls"
    directory = mount["mountPath"]
    assert {
        f"--tls-cert-file={directory}/tls.crt",
        f"--tls-private-key-file={directory}/tls.key",
        f"--ca-file={directory}/ca.crt",
    } <= set(container["args"])


def test_the_controller_is_probed_on_its_health_port(
    rendered: dict[str, list[Document]],
) -> None:
    pod = pod_spec(rendered["base"], "image-registry-controller")
    [container] = pod["containers"]
    assert container_ports(pod) == {"metrics": 8080, "health": 8081}
    assert probe(container, "startupProbe") == ("/healthz", "health", "HTTP")
    assert probe(container, "livenessProbe") == ("/healthz", "health", "HTTP")
    assert probe(container, "readinessProbe") == ("/readyz", "health", "HTTP")


def test_every_deployment_runs_flags_the_command_knows(
    rendered: dict[str, list[Document]],
) -> None:
    unknown: set[str] = set()
    for variant, documents in rendered.items():
        for deployment in (d for d in documents if d["kind"] in WORKLOAD_KINDS):
            for container in deployment["spec"]["template"]["spec"]["containers"]:
                _, extra = cli_main.build_parser().parse_known_args(container["args"])
                unknown |= {f"{variant}: {arg.partition('=')[0]}" for arg in extra}
    assert not unknown


def test_the_container_ports_are_the_commands_defaults(
    rendered: dict[str, list[Document]],
) -> None:
    """The manifests pass no port flags: the flags' defaults must be the ports the
    containers declare and the probes use."""
    webhook_ports = container_ports(pod_spec(rendered["base"], "image-registry-webhook"))
    controller_ports = container_ports(pod_spec(rendered["base"], "image-registry-controller"))
    frontdoor_ports = container_ports(pod_spec(rendered["frontdoor"], "image-registry-frontdoor"))
    assert default_port("serve", "bind") == webhook_ports["https"]
    assert default_port("serve", "metrics-bind-address") == webhook_ports["metrics"]
    assert default_port("frontdoor", "bind") == frontdoor_ports["https"]
    assert default_port("frontdoor", "metrics-bind-address") == frontdoor_ports["metrics"]
    assert default_port("controller", "metrics-bind-address") == controller_ports["metrics"]
    assert default_port("controller", "health-probe-bind-address") == controller_ports["health"]


def default_port(command: str, name: str) -> int:
    """The port of the default of ``command``'s bind-address flag ``name``."""
    [flag] = [flag for flag in COMMAND_FLAGS[command] if flag.name == name]
    address: str = flag.default
    return int(address.rpartition(":")[2])


# --- cert-manager in place of the built-in certificates


def test_cert_manager_writes_the_secret_the_server_mounts_and_injects_its_ca(
    rendered: dict[str, list[Document]],
) -> None:
    documents = rendered["cert-manager"]
    certificates = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Certificate"}
    configurations = [d for d in documents if d["kind"].endswith("WebhookConfiguration")]
    assert len(configurations) == 2
    for configuration in configurations:
        source = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        namespace, _, name = source.partition("/")
        serving = certificates[name]
        assert serving["metadata"]["namespace"] == namespace
        for hook in configuration["webhooks"]:
            service = hook["clientConfig"]["service"]
            assert f"{service['name']}.{service['namespace']}.svc" in serving["spec"]["dnsNames"]
    pod = pod_spec(documents, "image-registry-webhook")
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert serving["spec"]["secretName"] == volume["secret"]["secretName"]
    # Its issuer is a CA whose own Certificate is one, issued by a root in the namespace.
    issuers = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Issuer"}
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    [ca] = [
        c
        for c in certificates.values()
        if c["spec"]["secretName"] == ca_issuer["spec"]["ca"]["secretName"]
    ]
    assert ca["spec"]["isCA"] is True
    assert "selfSigned" in issuers[ca["spec"]["issuerRef"]["name"]]["spec"]


def test_with_cert_manager_the_controller_leaves_certificates_alone(
    rendered: dict[str, list[Document]],
) -> None:
    [container] = pod_spec(rendered["cert-manager"], "image-registry-controller")["containers"]
    assert container["args"] == ["controller", "--manage-certificates=false"]
    [container] = pod_spec(rendered["composed"], "image-registry-controller")["containers"]
    assert "--manage-certificates=false" in container["args"]
    [container] = pod_spec(rendered["base"], "image-registry-controller")["containers"]
    assert "--manage-certificates=false" not in container["args"]


@pytest.mark.parametrize("variant", ["frontdoor", "composed"])
def test_with_the_front_door_the_controller_reaches_the_upstream_and_only_it(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    """The tag reconciler (issue 17, item 6): told the upstream and its CA as the front
    door is, and let in by the upstream's NetworkPolicy; without the front door, no flag.
    The image-pruner CronJob's pods too: told the CA's ConfigMap, and let in."""
    documents = rendered[variant]
    door = pod_spec(documents, "image-registry-frontdoor")
    controller = pod_spec(documents, "image-registry-controller")
    [door_container], [container] = door["containers"], controller["containers"]
    upstream = [a for a in door_container["args"] if a.startswith("--upstream-")]
    assert len(upstream) == 2
    assert [a for a in container["args"] if a.startswith("--upstream-")] == upstream
    ca = next(v for v in door["volumes"] if v["name"] == "upstream-ca")
    assert ca in controller["volumes"]
    assert {"name": "upstream-ca", "mountPath": "/upstream-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    policy = one(documents, "NetworkPolicy", "image-registry-upstream")
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}
        for name in ("image-registry-frontdoor", "image-registry-controller", "image-pruner")
    ]
    assert f"--pruner-upstream-ca-configmap={ca['configMap']['name']}" in container["args"]
    [base] = pod_spec(rendered["base"], "image-registry-controller")["containers"]
    assert not [a for a in base["args"] if a.startswith("--upstream-")]


# --- monitoring


def test_each_process_has_a_metrics_service_the_service_monitor_scrapes(
    rendered: dict[str, list[Document]],
) -> None:
    documents = rendered["monitoring"]
    [monitor] = [d for d in documents if d["kind"] == "ServiceMonitor"]
    [endpoint] = monitor["spec"]["endpoints"]
    scraped = set()
    for service in (d for d in documents if d["kind"] == "Service"):
        labels = service["metadata"]["labels"]
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        if not selects(monitor["spec"]["selector"], labels) or endpoint["port"] not in ports:
            continue
        pod = next(
            d["spec"]["template"]
            for d in documents
            if d["kind"] == "Deployment"
            and selects(
                {"matchLabels": service["spec"]["selector"]},
                d["spec"]["template"]["metadata"]["labels"],
            )
        )
        assert ports[endpoint["port"]]["targetPort"] in container_ports(pod["spec"])
        scraped.add(pod["metadata"]["labels"]["app.kubernetes.io/name"])
    assert scraped == set(WORKLOADS)


def selects(selector: Document, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, and matchExpressions with In) against labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_prometheus_may_reach_the_webhook_pods_only_on_the_metrics_port(
    rendered: dict[str, list[Document]],
) -> None:
    policy = one(rendered["monitoring"], "NetworkPolicy", "image-registry-webhook-metrics")
    ports = [port for rule in policy["spec"]["ingress"] for port in rule["ports"]]
    pod = pod_spec(rendered["monitoring"], "image-registry-webhook")
    assert ports == [{"protocol": "TCP", "port": container_ports(pod)["metrics"]}]


ALERTS = {
    "RegistryPolicyWebhookErrors",
    "RegistryPolicyWebhookLatencyHigh",
    "RegistryPolicyWebhookUnreachable",
    "RegistryPolicyCertificateExpiresSoon",
    "RegistryPolicyReconcileErrors",
    "RegistryPolicyManagedTokenExpiresSoon",
    "RegistryPolicyLeaderAbsent",
}


def test_the_rules_carry_every_alert_with_a_severity(
    rendered: dict[str, list[Document]],
) -> None:
    [rule] = [d for d in rendered["monitoring"] if d["kind"] == "PrometheusRule"]
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == ALERTS
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]


# --- node trust (components/node-ca)

NODE_CA = "image-registry-node-ca"
HOSTS_DIR = "/etc/containerd/certs.d"
"""containerd's registry.config_path on kind, kubeadm and most distributions."""


def flag_values(container: Document) -> dict[str, str]:
    return dict(arg.removeprefix("--").partition("=")[::2] for arg in container["args"][1:])


@pytest.mark.parametrize("variant", ["frontdoor", "composed"])
def test_node_ca_runs_on_every_node_with_no_api_access_and_one_writable_host_dir(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    documents = rendered[variant]
    daemonset = one(documents, "DaemonSet", NODE_CA)
    assert daemonset["metadata"]["namespace"] == NODE_CA
    assert daemonset["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": NODE_CA}}
    pod = daemonset["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]  # every node, tainted or not
    # No API rights: no token mounted, and nothing binds its account.
    account = one(documents, "ServiceAccount", NODE_CA)
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == NODE_CA
    for binding in (d for d in documents if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert all(s["name"] != NODE_CA for s in binding.get("subjects") or []), api_name(binding)
    [container] = pod["containers"]
    assert container["args"][0] == "node-ca"
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # The ConfigMap mounted where --certificates-dir reads, optional until it exists; the
    # node's certs.d where --hosts-dir writes, the only writable mount.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    flags = flag_values(container)
    certificates = volumes[mounts[flags["certificates-dir"]]["name"]]["configMap"]
    assert certificates == {"name": "image-registry-certificates", "optional": True}
    assert mounts[flags["certificates-dir"]]["readOnly"] is True
    host = volumes[mounts[flags["hosts-dir"]]["name"]]["hostPath"]
    assert host == {"path": HOSTS_DIR, "type": "DirectoryOrCreate"}
    writable = [path for path, m in mounts.items() if not m.get("readOnly")]
    assert writable == [flags["hosts-dir"]]
    # The controller keeps that ConfigMap in the DaemonSet's namespace.
    [controller] = pod_spec(documents, "image-registry-controller")["containers"]
    assert f"--node-ca-namespace={NODE_CA}" in controller["args"]


def test_without_node_ca_the_controller_keeps_no_configmap(
    rendered: dict[str, list[Document]],
) -> None:
    for variant in ("base", "standalone", "cert-manager", "monitoring"):
        [container] = pod_spec(rendered[variant], "image-registry-controller")["containers"]
        assert not [a for a in container["args"] if a.startswith("--node-ca-namespace")]
        assert not [d for d in rendered[variant] if d["kind"] == "DaemonSet"]


def test_node_ca_pods_are_admitted_only_in_their_own_namespace(
    cluster: ClusterEnv, rendered: dict[str, list[Document]], namespace: str
) -> None:
    """Pod Security: the service's namespace enforces ``restricted``, which refuses a
    hostPath volume and root; node-ca's namespace is privileged and holds only it. Both
    namespaces here carry the labels the manifests give theirs."""
    documents = rendered["frontdoor"]
    daemonset = one(documents, "DaemonSet", NODE_CA)
    labels = {
        name: one(documents, "Namespace", name)["metadata"]["labels"]
        for name in ("image-registry-system", NODE_CA)
    }
    assert labels["image-registry-system"]["pod-security.kubernetes.io/enforce"] == "restricted"
    own = f"{namespace}-node-ca"
    cluster.kubectl("create", "namespace", own)
    try:
        verdicts = {}
        for target, like in ((namespace, "image-registry-system"), (own, NODE_CA)):
            pairs = [f"{k}={v}" for k, v in labels[like].items()]
            cluster.kubectl("label", "namespace", target, "--overwrite", *pairs)
            cluster.kubectl("create", "serviceaccount", NODE_CA, "-n", target)
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": NODE_CA, "namespace": target},
                "spec": daemonset["spec"]["template"]["spec"],
            }
            verdicts[like] = cluster.kubectl(
                "create", "--dry-run=server", "-o", "name", "-f", "-",
                input=yaml.safe_dump(pod), check=False,
            )  # fmt: skip
        refused = verdicts["image-registry-system"]
        assert refused.returncode != 0
        assert "violates PodSecurity" in refused.stderr and "hostPath" in refused.stderr
        assert verdicts[NODE_CA].returncode == 0, verdicts[NODE_CA].stderr
    finally:
        cluster.kubectl("delete", "namespace", own, "--wait=false", check=False)


def pruner_image(deployment: Document) -> str | None:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return env.get("REGISTRY_WEBHOOK_PRUNER_IMAGE")


@pytest.mark.parametrize("variant", [*sorted(VARIANTS), "composed"])
def test_the_pruner_runs_the_controllers_own_image(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    controller = one(rendered[variant], "Deployment", "image-registry-controller")
    [container] = controller["spec"]["template"]["spec"]["containers"]
    assert pruner_image(controller) == container["image"] == f"{IMAGE}:{VERSION}"


def test_an_overlays_image_override_reaches_the_pruner_too(
    cluster: ClusterEnv, tmp_path: Path
) -> None:
    """A platform team pins the image by its own registry and digest: the CronJob's
    image (--pruner-image) follows, so the pruner never runs another release."""
    pinned = "registry.example/team/policy@sha256:" + "a" * 64
    name, digest = pinned.split("@")
    kustomization = {
        "resources": [os.path.relpath(MANIFESTS / "base", tmp_path)],
        "images": [{"name": IMAGE, "newName": name, "digest": digest}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    controller = one(render(cluster, tmp_path), "Deployment", "image-registry-controller")
    [container] = controller["spec"]["template"]["spec"]["containers"]
    assert pruner_image(controller) == container["image"] == pinned
