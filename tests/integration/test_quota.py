"""Image limits and quota on ImageStream writes, against the real API server and
kube-controller-manager."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from frontdoor.records import refusal
from quota.decision import Cause, Decision
from tests.integration.support.cluster import (
    CACHE_DEADLINE,
    RELEASE_DEADLINE,
    ClusterEnv,
    own_stack,
)
from tests.integration.support.objects import (
    GROUP,
    digest,
    image_limit,
    quota,
    set_history,
    stream,
    stream_limits,
    used,
)


def test_too_many_tags_is_denied_with_the_contract_message(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "2"}), "-n", namespace)
    result = cluster.apply(stream("app", ["a", "b", "c"]), "-n", namespace, check=False)
    assert result.returncode != 0
    assert (
        'ImageStream "app" is forbidden: requested usage of alauda.io/image-tags exceeds the '
        'maximum limit per alauda.io/ImageStream (3 > 2) set by LimitRange "stream-limits"'
    ) in result.stderr
    cluster.apply(stream("app", ["a", "b"]), "-n", namespace)


def test_a_denial_names_its_rule_in_the_status_the_writer_gets(
    cluster: ClusterEnv, namespace: str
) -> None:
    """The API server hands our webhook's Status details to the writer as they are: the
    front door's records learn the rule and the contract's message from them, never from
    the prefixed message (``frontdoor.records.refusal``)."""
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "1"}), "-n", namespace)
    custom = client.CustomObjectsApi(cluster.api)

    def refused() -> ApiException | None:
        try:
            custom.create_namespaced_custom_object(
                GROUP, "v1", namespace, "imagestreams", stream("app", ["a", "b"])
            )
        except ApiException as err:
            return err
        custom.delete_namespaced_custom_object(GROUP, "v1", namespace, "imagestreams", "app")
        return None  # the webhook's cache has not seen the LimitRange yet

    err = cluster.wait(refused, timeout=CACHE_DEADLINE, what="the limit enforced")
    message = (
        'ImageStream "app" is forbidden: requested usage of alauda.io/image-tags exceeds the '
        'maximum limit per alauda.io/ImageStream (2 > 1) set by LimitRange "stream-limits"'
    )
    status = json.loads(err.body)
    assert status["message"].endswith(f"denied the request: {message}")
    assert status["details"]["causes"] == [{"reason": "ImageTagsLimitExceeded", "message": message}]
    assert refusal(err) == Decision.deny(message, Cause.IMAGE_TAGS_LIMIT)


def test_status_tags_count_with_spec_tags(cluster: ClusterEnv, namespace: str) -> None:
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "2"}), "-n", namespace)
    cluster.apply(stream("app", ["a", "b"]), "-n", namespace)
    set_history(cluster, namespace, "app", {"a": [1], "b": [2]})
    denied = set_history(cluster, namespace, "app", {"a": [1], "b": [2], "c": [3]}, check=False)
    assert denied.returncode != 0
    assert (
        "alauda.io/image-tags exceeds the maximum limit per alauda.io/ImageStream (3 > 2)"
        in denied.stderr
    )


def test_too_many_images_in_the_history_is_denied(cluster: ClusterEnv, namespace: str) -> None:
    cluster.apply(stream_limits(**{"alauda.io/images": "2"}), "-n", namespace)
    cluster.apply(stream("app", ["v1"]), "-n", namespace)
    set_history(cluster, namespace, "app", {"v1": [1, 2]})
    denied = set_history(cluster, namespace, "app", {"v1": [1, 2, 3]}, check=False)
    assert denied.returncode != 0
    assert (
        'ImageStream "app" is forbidden: requested usage of alauda.io/images exceeds the maximum '
        'limit per alauda.io/ImageStream (3 > 2) set by LimitRange "stream-limits"'
    ) in denied.stderr


def test_the_smallest_limit_of_several_limitranges_wins(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(stream_limits("loose", **{"alauda.io/image-tags": "5"}), "-n", namespace)
    cluster.apply(stream_limits("tight", **{"alauda.io/image-tags": "1"}), "-n", namespace)
    result = cluster.apply(stream("app", ["a", "b"]), "-n", namespace, check=False)
    assert '(2 > 1) set by LimitRange "tight"' in result.stderr


def test_an_over_limit_stream_can_be_edited_without_growing(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(stream("app", ["a", "b", "c"]), "-n", namespace)
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "2"}), "-n", namespace)
    # Already over (3 > 2): edits that keep the count pass ...
    cluster.apply(stream("app", ["a", "b", "c"], labels={"team": "x"}), "-n", namespace)
    cluster.apply(stream("app", ["a", "b", "d"]), "-n", namespace)
    # ... so does shrinking ...
    cluster.apply(stream("app", ["a", "b"]), "-n", namespace)
    # ... growing past the limit again does not.
    result = cluster.apply(stream("app", ["a", "b", "c"]), "-n", namespace, check=False)
    assert result.returncode != 0 and "(3 > 2)" in result.stderr


def test_image_storage_limit_applies_to_new_history_items(
    cluster: ClusterEnv, namespace: str
) -> None:
    big, small = digest(0xB16), digest(0x5A11)
    # CRD names cannot hold ':'; standalone Images carry the digest in their reference.
    images = [f"{namespace}-big", f"{namespace}-small"]
    for name, ref, size in ((images[0], big, 2 * 1024**3), (images[1], small, 100 * 1024**2)):
        image = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Image",
            "metadata": {"name": name},
            "dockerImageReference": f"image-registry.image-registry-system.svc:5000/x/app@{ref}",
            "dockerImageMetadata": {"size": size},
        }
        cluster.apply(image)
    cluster.apply(image_limit("1Gi"), "-n", namespace)
    cluster.apply(stream("app", ["v1"]), "-n", namespace)
    cluster.wait(
        lambda: (
            set_history(cluster, namespace, "app", {"v1": [0x5A11]}, check=False).returncode == 0
        ),
        timeout=CACHE_DEADLINE,
        what="the webhook's image cache to see the new Images",
    )
    denied = set_history(cluster, namespace, "app", {"v1": [0x5A11, 0xB16]}, check=False)
    assert denied.returncode != 0
    assert (
        'ImageStream "app" is forbidden: requested usage of storage exceeds the maximum limit '
        'per alauda.io/Image (2Gi > 1Gi) set by LimitRange "image-limits"'
    ) in denied.stderr
    cluster.kubectl("delete", "image", *images, "--wait=false")


def test_an_image_no_object_describes_is_denied_retryably_until_its_image_exists(
    cluster: ClusterEnv, namespace: str
) -> None:
    unknown = digest(0x404)
    cluster.apply(image_limit("1Gi"), "-n", namespace)
    cluster.apply(stream("app", ["v1"]), "-n", namespace)
    message = (
        f"the size of image {unknown} is not known yet (no Image object describes it), so the "
        'storage limit per alauda.io/Image set by LimitRange "image-limits" cannot be checked; '
        "retry"
    )
    cluster.wait(
        lambda: (
            message
            in set_history(
                cluster, namespace, "app", {"v1": [0x404]}, check=False, dry_run=True
            ).stderr
        ),
        timeout=CACHE_DEADLINE,
        what="the webhook's LimitRange cache to see the storage limit",
    )
    not_found = "registry_v2_policy_image_lookups_total"
    before = cluster.metric(not_found, result="not_found")
    denied = set_history(cluster, namespace, "app", {"v1": [0x404]}, check=False)
    assert denied.returncode != 0
    assert message in denied.stderr
    if cluster.stack is not None:  # one server process: its counter saw this write
        assert cluster.metric(not_found, result="not_found") >= before + 1, (
            "the webhook must have asked the API server, not only its cache"
        )

    late = f"{namespace}-late"
    image = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Image",
        "metadata": {"name": late},
        "dockerImageReference": f"image-registry.image-registry-system.svc:5000/x/app@{unknown}",
        "dockerImageMetadata": {"size": 1024**2},
    }
    cluster.apply(image)
    try:
        cluster.wait(
            lambda: (
                set_history(cluster, namespace, "app", {"v1": [0x404]}, check=False).returncode == 0
            ),
            timeout=CACHE_DEADLINE,
            what="the retried write to pass once the Image exists",
        )
    finally:
        cluster.kubectl("delete", "image", late, "--wait=false")


def test_dry_run_judges_the_same_and_charges_nothing(cluster: ClusterEnv, namespace: str) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": "1"}), "-n", namespace)
    cluster.apply(stream_limits(**{"alauda.io/image-tags": "1"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")
    ok = cluster.apply(stream("app", ["a"]), "-n", namespace, "--dry-run=server")
    assert "(server dry run)" in ok.stdout
    assert used(cluster, namespace) == "0"
    denied = cluster.apply(
        stream("app", ["a", "b"]), "-n", namespace, "--dry-run=server", check=False
    )
    assert denied.returncode != 0 and "(2 > 1)" in denied.stderr
    cluster.apply(stream("app", ["a"]), "-n", namespace)
    assert used(cluster, namespace) == "1"
    over = cluster.apply(stream("other", ["a"]), "-n", namespace, "--dry-run=server", check=False)
    assert over.returncode != 0
    assert (
        "exceeded quota: images, requested: alauda.io/imagestreams=1, used: "
        "alauda.io/imagestreams=1, limited: alauda.io/imagestreams=1"
    ) in over.stderr
    assert used(cluster, namespace) == "1"


def test_forty_concurrent_creates_against_room_for_five_admit_exactly_five(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": "5"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")

    def create(i: int) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "create", "-n", namespace, "-f", "-", input=json.dumps(stream(f"s{i:02d}")), check=False
        )

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        results = list(pool.map(create, range(40)))
    admitted = [r for r in results if r.returncode == 0]
    denied = [r for r in results if r.returncode != 0]
    assert len(admitted) == 5
    unexpected = [r.stderr for r in denied if "exceeded quota: images" not in r.stderr]
    assert not unexpected, unexpected
    items = cluster.kubectl_json("get", "imagestreams", "-n", namespace)["items"]
    assert len(items) == 5
    assert used(cluster, namespace) == "5"
    table = cluster.kubectl("get", "resourcequota", "images", "-n", namespace).stdout
    assert "alauda.io/imagestreams: 5/5" in table

    names = [i["metadata"]["name"] for i in items]
    cluster.kubectl("delete", "imagestream", names[0], names[1], "-n", namespace)
    cluster.wait(
        lambda: used(cluster, namespace) == "3",
        timeout=RELEASE_DEADLINE,
        what="deletions to free quota",
    )


CHARGES = "registry_v2_policy_quota_charges_total"
WRITES = "registry_v2_policy_quota_status_writes_total"
QUEUED_CLIENTS = 8
CHARGES_PER_CLIENT = 10


def create_review(namespace: str, name: str) -> bytes:
    """The AdmissionReview the API server sends for an ImageStream create."""
    request = {
        "uid": f"review-{name}",
        "kind": {"group": GROUP, "version": "v1", "kind": "ImageStream"},
        "resource": {"group": GROUP, "version": "v1", "resource": "imagestreams"},
        "operation": "CREATE",
        "namespace": namespace,
        "name": name,
        "object": stream(name),
    }
    envelope = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
    return json.dumps({**envelope, "request": request}).encode()


@pytest.mark.local_only
def test_queued_charges_in_one_process_share_writes_without_conflicts() -> None:
    """Concurrent creates in one namespace queue in the process, and each batch of them
    charges right after the previous write, before the watch cache has seen it. They are
    charged against what our own last write returned, as kube-apiserver's quota admission
    does: no 409 and live re-read (against the cache, most of them conflicted), and the
    charges queued together share one write, so fewer writes than charges. What a process
    remembers is its own, so the stack here has one replica with one worker, and nothing
    else writes the quota. (Across processes a stale memory
    costs a 409 and a live read, never an over-admit: test_concurrent_creates_*.)"""
    with own_stack(webhook_replicas=1, webhook_args=["--workers=1"]) as cluster:
        assert cluster.stack is not None
        namespace = "queued-charges"
        cluster.kubectl("create", "namespace", namespace)
        cluster.apply(quota({"alauda.io/imagestreams": "1000"}), "-n", namespace)
        cluster.wait(
            lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed"
        )
        ca = str(cluster.stack.certs_dir / "ca.crt")
        cert_file, key_file = cluster.stack.api_server_client_cert
        cert = (str(cert_file), str(key_file))
        url = cluster.stack.webhook_url + "/validate/imagestreams"

        def post(session: requests.Session, name: str) -> bool:
            answer = session.post(
                url,
                data=create_review(namespace, name),
                headers={"Content-Type": "application/json"},
                verify=ca,
                cert=cert,
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            return bool(answer.json()["response"]["allowed"])

        sessions = [requests.Session() for _ in range(QUEUED_CLIENTS)]
        # Until the cache has the counted quota, a create is denied as unknown.
        cluster.wait(lambda: post(sessions[0], "warm-up"), timeout=CACHE_DEADLINE, what="a charge")
        conflicts = cluster.metric(CHARGES, result="conflict")
        charged = cluster.metric(CHARGES, result="charged")
        written = cluster.metric(WRITES, result="written")

        def client(n: int) -> int:
            return sum(post(sessions[n], f"c{n}-{i}") for i in range(CHARGES_PER_CLIENT))

        with concurrent.futures.ThreadPoolExecutor(QUEUED_CLIENTS) as pool:
            admitted = sum(pool.map(client, range(QUEUED_CLIENTS)))
        for session in sessions:
            session.close()
        total = QUEUED_CLIENTS * CHARGES_PER_CLIENT
        assert admitted == total
        assert cluster.metric(CHARGES, result="charged") - charged == total
        assert cluster.metric(CHARGES, result="conflict") - conflicts == 0
        assert cluster.metric(WRITES, result="written") - written < total


def test_a_charge_whose_create_failed_is_released(cluster: ClusterEnv, namespace: str) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": "3"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")
    manifest = json.dumps(stream("dup"))
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=manifest)
    # The second create passes admission (and is charged), then fails in storage.
    again = cluster.kubectl("create", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert "AlreadyExists" in again.stderr
    assert used(cluster, namespace) == "2"
    cluster.wait(
        lambda: used(cluster, namespace) == "1",
        timeout=RELEASE_DEADLINE,
        what="the leaked charge to be released",
    )


def test_usage_coexists_with_the_kubernetes_quota_controller(
    cluster: ClusterEnv, namespace: str
) -> None:
    cluster.apply(quota({"alauda.io/imagestreams": "4", "configmaps": "10"}), "-n", namespace)
    cluster.apply(stream("one"), "-n", namespace)

    def both() -> bool:
        status = cluster.kubectl_json("get", "resourcequota", "images", "-n", namespace)["status"]
        return status.get("used", {}).get(
            "alauda.io/imagestreams"
        ) == "1" and "configmaps" in status.get("used", {})

    cluster.wait(both, timeout=30, what="both usages in status")
    # The Kubernetes quota controller recomputes configmaps and keeps our entry.
    cluster.kubectl("create", "configmap", "c1", "-n", namespace)
    cluster.wait(
        lambda: (
            cluster.kubectl_json("get", "resourcequota", "images", "-n", namespace)["status"][
                "used"
            ].get("configmaps")
            == "2"
        ),
        timeout=60,
        what="the quota controller to count the new configmap",
    )
    assert used(cluster, namespace) == "1"
    described = cluster.kubectl("describe", "resourcequota", "images", "-n", namespace).stdout
    assert any(
        line.split() == ["alauda.io/imagestreams", "1", "4"] for line in described.splitlines()
    ), described


def test_broken_policies_are_refused_with_the_field_path(
    cluster: ClusterEnv, namespace: str
) -> None:
    broken_quota = quota({"alauda.io/imagestreams": "-3"}, name="broken")
    result = cluster.apply(broken_quota, "-n", namespace, check=False)
    assert result.returncode != 0
    assert 'ResourceQuota "broken" is invalid: spec.hard[alauda.io/imagestreams]' in result.stderr
    wrong_resource = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "wrong"},
        "spec": {"limits": [{"type": "alauda.io/Image", "max": {"alauda.io/images": "3"}}]},
    }
    result = cluster.apply(wrong_resource, "-n", namespace, check=False)
    assert result.returncode != 0
    assert "spec.limits[0].max[alauda.io/images]" in result.stderr
    min_over_max = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "minmax"},
        "spec": {
            "limits": [
                {"type": "alauda.io/Image", "max": {"storage": "1Gi"}, "min": {"storage": "2Gi"}}
            ]
        },
    }
    result = cluster.apply(min_over_max, "-n", namespace, check=False)
    assert result.returncode != 0
    assert "spec.limits[0].min[storage]" in result.stderr


@pytest.mark.local_only
def test_a_quota_not_counted_yet_is_unknown_not_zero(cluster: ClusterEnv, namespace: str) -> None:
    """Three streams exist; a quota of three arrives while the controller is down. Counted
    as zero it would let three more in; unknown, it lets none in until it is counted."""
    assert cluster.stack is not None
    for name in ("s1", "s2", "s3"):
        cluster.apply(stream(name), "-n", namespace)
    cluster.stack.stop_controller()
    try:
        cluster.apply(quota({"alauda.io/imagestreams": "3"}), "-n", namespace)

        def judged_with_the_quota() -> bool:  # a dry run changes nothing, so it may repeat
            probe = cluster.apply(stream("s4"), "-n", namespace, "--dry-run=server", check=False)
            return "status unknown for quota" in probe.stderr

        cluster.wait(judged_with_the_quota, timeout=CACHE_DEADLINE, what="the quota cached")
        denied = cluster.apply(stream("s4"), "-n", namespace, check=False)
        assert denied.returncode != 0
        assert "status unknown for quota: images, resources: alauda.io/imagestreams" in (
            denied.stderr
        )
    finally:
        cluster.stack.start_controller()
    cluster.wait(lambda: used(cluster, namespace) == "3", timeout=30, what="usage to be computed")
    over = cluster.apply(stream("s4"), "-n", namespace, check=False)
    assert "exceeded quota: images" in over.stderr


def test_pods_churning_in_the_same_quota_do_not_delay_the_release(
    cluster: ClusterEnv, namespace: str
) -> None:
    """Kubernetes' quota admission rewrites a quota that limits pods on every pod create;
    the release must follow the ImageStream count all the same."""
    cluster.apply(quota({"alauda.io/imagestreams": "3", "pods": "1000"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")
    for name in ("s1", "s2", "s3"):
        cluster.apply(stream(name), "-n", namespace)
    cluster.wait(
        lambda: (
            cluster.kubectl("get", "sa", "default", "-n", namespace, check=False).returncode == 0
        ),
        timeout=30,
        what="the namespace's default ServiceAccount, which pods need",
    )
    cluster.kubectl("delete", "imagestream", "s1", "-n", namespace)
    pods = iter(range(1000))

    def released_while_pods_churn() -> bool:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"churn-{next(pods)}"},
            "spec": {"containers": [{"name": "c", "image": "registry.example.com/x:1"}]},
        }
        cluster.apply(pod, "-n", namespace)
        return used(cluster, namespace) == "2"

    cluster.wait(
        released_while_pods_churn, timeout=RELEASE_DEADLINE, what="the deletion to free quota"
    )


@pytest.mark.local_only
def test_a_forged_create_review_changes_nothing(cluster: ClusterEnv, namespace: str) -> None:
    """Anyone who reaches our port could post a CREATE review and charge another team's
    quota. Without the API server's client certificate the review is refused before it is
    read. Genuine reviews (with the certificate) charge before and after it, so the
    refusal, not a cold cache, is what kept ``status.used`` still; a charge is written
    before the answer, so no wait is needed after the forged one."""
    cluster.apply(quota({"alauda.io/imagestreams": "5"}), "-n", namespace)
    cluster.wait(lambda: used(cluster, namespace) == "0", timeout=30, what="usage to be computed")
    headers = {"Content-Type": "application/json"}

    def review(name: str) -> bytes:
        return create_review(namespace, name)

    def charged_as_api_server(name: str, expected: str) -> bool:
        answer = cluster.server_request("POST", "/validate/imagestreams", review(name), headers)
        assert answer.status == 200, answer.body
        return used(cluster, namespace) == expected

    # Until the webhook has cached the quota a review charges nothing; once it charges,
    # each one adds exactly one (the quota rules are tested elsewhere).
    cluster.wait(
        lambda: charged_as_api_server("first", "1"),
        timeout=CACHE_DEADLINE,
        what="a genuine review to charge",
    )

    forged = cluster.server_request(
        "POST", "/validate/imagestreams", review("forged"), headers, as_api_server=False
    )

    assert forged.status == 401
    assert "client certificate" in forged.json()["error"]
    assert used(cluster, namespace) == "1"
    assert charged_as_api_server("second", "2")
