"""``prune images``: the plan (``plan``) carried out against the API and the registry.

Dry run by default: list, plan, print. With ``--confirm`` the three steps of the plan run
in order, each on fresh reads, so that what a push did meanwhile is never undone:

1. each stream that loses history is read live, its history pruned again from that read
   (``plan.prune_history``) and written with that read's resourceVersion; a conflict (a
   push's tag event landed in between) is retried from a fresh read, so the push's event
   is kept;
2. streams and Images are listed again and the Images to delete planned again; right
   before the deletes the streams are listed once more, and an Image one of them now
   references is left; each delete carries the Image's resourceVersion as read;
3. each deleted Image's manifest is deleted from its repositories in the registry
   (``--upstream-registry``), indexes first, unless a fresh list of streams references
   its digest again (the same image pushed meanwhile).

A run cut short in step 1 or 2 is finished by the next one. One cut between an Image's
delete and its manifest's leaves that manifest in the registry: never served (the front
door serves only digests the Image API records) but not collected either, as no run
knows it any more; oc's pruner deletes the Image last for this reason, and the order
here is the product's contract (metadata first).

Then, with ``--prune-registry``, the registry's garbage collection (``collect``).

Exit codes: 0 done (or nothing to do), 1 a step failed (what was done stays done; run
again), 2 bad usage (the command line), 3 a workload's image reference cannot be parsed
and ``--ignore-invalid-refs`` was not given (nothing was changed).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, TextIO

import urllib3
from kubernetes.client.exceptions import ApiException

from controller.imageprune.api import PruneApi
from controller.imageprune.collect import Collected, CollectFailed, collect
from controller.imageprune.config import PruneConfig
from controller.imageprune.plan import ImageRemoval, Plan, plan, prune_history
from controller.imageprune.references import InUse, in_use, workload_uses
from controller.imageprune.report import human_bytes, summary, table
from controller.registrytags.registry import RegistryUnavailable, UpstreamRegistry
from kube import apierrors
from kube.client import api_client
from quota.imagerefs import images_by_digest, referenced_images
from quota.objects import Obj, metadata
from quota.pullsecrets.dockerconfig import route_hostnames

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID_REFERENCES: Final = 3
CONFLICT_RETRIES: Final = 5
"""Fresh reads of one stream before its history write gives up: each conflict is a push
that landed in between, and five in a row on one stream is a push storm worth a rerun
(client-go's ``retry.DefaultRetry`` takes 5 steps too)."""


class PruneFailed(Exception):
    """A step could not be carried out; the message says which and what is left."""


def registry_hosts(internal: Iterable[str], config: Obj | None, images: Iterable[Obj]) -> set[str]:
    """The hosts this registry answers as: its configured names, the routes of
    ``configs/cluster``, and the host every recorded Image names (the front door's
    ``--internal-registry``)."""
    hosts = set(internal) | set(route_hostnames(config))
    for image in images:
        reference = image.get("dockerImageReference")
        if isinstance(reference, str) and "/" in reference:
            hosts.add(reference.split("/", 1)[0])
    return hosts


def workloads_in_use(api: PruneApi, hosts: set[str], streams: list[Obj]) -> InUse:
    uses = [use for obj in api.workloads() for use in workload_uses(str(obj["kind"]), obj)]
    return in_use(uses, hosts, streams)


def prune_stream_history(
    api: PruneApi, repository: str, config: PruneConfig, now: datetime, used: frozenset[str]
) -> int:
    """Step 1 for one stream, on live reads; the revisions removed."""
    namespace, name = repository.split("/", 1)
    for _ in range(CONFLICT_RETRIES):
        live = api.stream(namespace, name)
        if live is None:
            return 0
        new_tags, removed = prune_history(live, config.policy, now, used)
        if not removed:
            return 0
        try:
            api.write_stream_status(
                {**live, "status": {**live.get("status", {}), "tags": new_tags}}
            )
        except ApiException as err:
            if apierrors.is_conflict(err):
                continue
            if apierrors.is_not_found(err):
                return 0
            raise
        return len(removed)
    raise PruneFailed(
        f"ImageStream {repository} changed under each of {CONFLICT_RETRIES} history writes "
        "(pushes in progress); run again"
    )


def delete_images(
    api: PruneApi, removals: Iterable[ImageRemoval], images: Mapping[str, Obj]
) -> list[ImageRemoval]:
    """Step 2's deletes, each re-checked against a fresh list of streams; the removals
    carried out (an Image already gone counts: its manifests still go)."""
    referenced = referenced_images(api.streams(), images)
    done: list[ImageRemoval] = []
    for removal in removals:
        if removal.digest in referenced:
            log.info("image %s is referenced again; kept", removal.digest)
            continue
        version = str(metadata(images[removal.digest]).get("resourceVersion", ""))
        try:
            api.delete_image(removal.name, version)
        except ApiException as err:
            if apierrors.is_conflict(err):
                log.info("image %s changed since it was read; kept", removal.digest)
                continue
            if not apierrors.is_not_found(err):
                raise
        done.append(removal)
    return done


def delete_manifests(upstream: UpstreamRegistry, manifests: Iterable[tuple[str, str]]) -> int:
    deleted = 0
    for repository, digest in manifests:
        try:
            deleted += upstream.delete_manifest(repository, digest)
        except RegistryUnavailable as err:
            raise PruneFailed(f"deleting manifests from the registry: {err}") from None
    return deleted


def confirm(
    api: PruneApi,
    registry: UpstreamRegistry | None,
    config: PruneConfig,
    first: Plan,
    now: datetime,
    use: InUse,
) -> Plan:
    """Steps 1-3 on fresh reads; the plan of what was done, for the report."""
    for repository in first.statuses:
        prune_stream_history(api, repository, config, now, use.digests)
    images = images_by_digest(api.images())
    second = plan(api.streams(), images, use.owners, config.policy, now)
    done = delete_images(api, second.images, images)
    repositories = {removal.digest: set(removal.repositories) for removal in first.images}
    for removal in done:
        repositories.setdefault(removal.digest, set()).update(removal.repositories)
    manifests = tuple(
        (repository, removal.digest)
        for removal in done
        for repository in sorted(repositories[removal.digest])
    )
    if registry is None:
        if manifests:
            log.warning(
                "no --upstream-registry: %d manifests stay in the registry until a run with it",
                len(manifests),
            )
    else:
        # A push of the same digest may have recorded it again since its Image went:
        # its manifest stays (the re-pushed Image is kept on the next run's reads).
        again = referenced_images(api.streams(), images_by_digest(api.images()))
        manifests = tuple(pair for pair in manifests if pair[1] not in again)
        delete_manifests(registry, manifests)
    return Plan(
        revisions=first.revisions,
        statuses=first.statuses,
        images=tuple(done),
        kept=second.kept,
        freed_bytes=sum(removal.freed_bytes for removal in done),
        manifests=manifests if registry is not None else (),
    )


def prune(api: PruneApi, config: PruneConfig, out: TextIO, now: datetime) -> int:
    streams = api.streams()
    image_list = api.images()
    hosts = registry_hosts(config.internal_hostnames, api.registry_config(), image_list)
    use = workloads_in_use(api, hosts, streams)
    for bad in use.invalid:
        log.warning("%s: image %r: %s", bad.owner, bad.image, bad.reason)
    if use.invalid and not config.ignore_invalid_refs:
        print(
            f"{len(use.invalid)} image references cannot be parsed (listed above); nothing "
            "was pruned: fix them, or add --ignore-invalid-refs to prune without them",
            file=sys.stderr,
        )
        return EXIT_INVALID_REFERENCES
    first = plan(streams, images_by_digest(image_list), use.owners, config.policy, now)
    if not config.confirm:
        print(table(first, config.policy), file=out)
        print(summary(first, confirmed=False), file=out)
        if config.prune_registry:
            print("with --confirm, the registry's garbage collection would run next", file=out)
        return EXIT_OK
    registry = None
    if config.upstream is not None:
        registry = UpstreamRegistry(config.upstream.url, config.upstream.ca_file)
    done = confirm(api, registry, config, first, now, use)
    print(table(done, config.policy), file=out)
    print(summary(done, confirmed=True), file=out)
    if config.prune_registry and config.registry_config is not None:
        collected = collect(
            api,
            config.registry_binary,
            config.registry_config,
            config.write_drain_seconds,
        )
        print(collected_line(collected), file=out)
    return EXIT_OK


def collected_line(collected: Collected) -> str:
    """The collection's result: bytes on disk for the filesystem driver, else what the
    collector said."""
    freed = collected.freed_bytes
    if freed is None or collected.before_bytes is None or collected.after_bytes is None:
        return f"registry garbage collection done: {collected.summary or 'no summary'}"
    return (
        f"registry garbage collection freed {human_bytes(freed)} ({freed} bytes) on disk: "
        f"{collected.before_bytes} -> {collected.after_bytes} bytes"
    )


def run_prune(config: PruneConfig, out: TextIO = sys.stdout) -> int:
    with api_client(config.kubeconfig) as api:
        try:
            return prune(PruneApi(api), config, out, datetime.now(UTC))
        except (PruneFailed, CollectFailed) as err:
            print(f"prune images: {err}", file=sys.stderr)
            return EXIT_FAILED
        except ApiException as err:
            message = apierrors.status_of(err).get("message") or err.reason
            print(f"prune images: the API server answered {err.status}: {message}", file=sys.stderr)
            return EXIT_FAILED
        except (urllib3.exceptions.HTTPError, OSError) as err:
            # A timeout or a refused connection: urllib3's, not an answer (nothing to read).
            print(f"prune images: the API server did not answer: {err}", file=sys.stderr)
            return EXIT_FAILED
