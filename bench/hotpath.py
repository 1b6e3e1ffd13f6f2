"""CPU per request inside the WSGI app: ours next to a bare Flask app, same bodies, same call.

Every ServiceAccount and ImageStream write goes through us, so the CPU our app spends on
one review bounds how many reviews a core can answer. Here the real app (``assemble_app``,
the function ``serve`` calls) answers realistic bodies with its I/O faked in memory (caches
hold realistic objects, quota always has room, the caller's token review is cached), and
the same bodies go to a bare Flask app that parses the JSON and answers with a one-op
patch. Both are called as gunicorn calls them (a WSGI environ in, the body iterated out),
in turns (``bench.report.alternate``), and measured in CPU time of this process: what is
left is our own cost per request, away from TLS, sockets and the worker model.

Expected duration with the defaults (5 bodies x 20 rounds x 400 requests, for each app):
about 40 s of CPU (2 minutes on a shared 2-core machine); ``--rounds 4 --requests 100``
takes seconds.
``--profile NAME`` only runs our app on one body, for ``py-spy record -- python -m bench
hotpath --profile NAME`` (sampling, little distortion); with ``--cprofile`` under cProfile,
printing the top functions (and ``bench/results/hotpath-NAME.prof`` for pstats).
"""

from __future__ import annotations

import argparse
import base64
import copy
import cProfile
import functools
import io
import json
import logging
import os
import pstats
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask, Response, jsonify, request

from bench import plots
from bench.report import RESULTS, Figure, Report, Target, alternate, progress
from cli.logs import DEFAULT_LOG_FORMAT, configure_logging
from quota.decision import Decision
from quota.objects import Obj
from quota.resourcequota import ChargePlan
from serving.callerreviews import Authenticator, Authorizer
from webhook.main import assemble_app

NAME: Final = "hotpath"
ROUNDS: Final = 20
"""Turns of ours and bare per body: enough for a median that one noisy turn cannot move."""
REQUESTS: Final = 400
"""Requests per turn: long enough (tens of ms) that the CPU clock's resolution is noise."""
WARMUP_REQUESTS: Final = 50
CAPACITY_SHARE: Final = 0.7
"""Issue 11: capacity at least 0.7 x the bare Flask stack's. TLS, gunicorn and sockets cost
both alike, so an app using at most 1 / 0.7 of the bare app's CPU meets it whatever they
cost: the in-app bound that is sufficient on its own."""
APP_CPU_RATIO_BOUND: Final = 1 / CAPACITY_SHARE

NAMESPACE: Final = "team-a"
TAGS: Final = 20
"""Issue 11: ImageStreams with 20 tags and their history."""
HISTORY: Final = 5
"""Images per tag in status (each push of a tag adds one)."""
LAYERS: Final = 10
"""Layers of one image: a typical application image on a distribution base."""
TOKEN: Final = "bench-token"
REGISTRY: Final = "image-registry.image-registry-system.svc:5000"
CREATED: Final = "2026-11-28T09:00:00Z"


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def _fields(*names: str) -> dict[str, Any]:
    """A managedFields ``fieldsV1`` set naming ``names`` (the shape the API server writes)."""
    return {f"f:{name}": {} for name in names}


def image_object(n: int) -> Obj:
    """An Image as the registry writes it: layers listed, so its size is theirs."""
    return {
        "apiVersion": "image.alauda.io/v1",
        "kind": "Image",
        "metadata": {
            "name": f"img-{n}",
            "uid": f"00000000-0000-4000-8000-{n:012x}",
            "resourceVersion": str(1000 + n),
            "creationTimestamp": CREATED,
        },
        "dockerImageReference": f"{REGISTRY}/{NAMESPACE}/app@{digest(n)}",
        "dockerImageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "dockerImageConfig": {"digest": digest(n + 7_000_000), "size": 1469},
        "dockerImageLayers": [
            {
                "name": digest(n * 100 + i + 8_000_000),
                "size": 2_811_478 + i,
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            }
            for i in range(LAYERS)
        ],
        "dockerImageMetadata": {"size": 28_116_249},
    }


def _managed(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> Obj:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "image.alauda.io/v1",
        "time": CREATED,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def imagestream(name: str = "app", *, history: int = HISTORY, status: bool = True) -> Obj:
    """An ImageStream of ``TAGS`` tags, as ``kubectl apply`` and the registry leave it."""
    spec_tags = [
        {
            "name": f"v{t}",
            "annotations": None,
            "from": {"kind": "DockerImage", "name": f"registry.example.com/{name}:v{t}"},
            "generation": 2,
            "importPolicy": {"importMode": "Legacy"},
            "referencePolicy": {"type": "Source"},
        }
        for t in range(TAGS)
    ]
    spec_fields = {
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied": {}}},
        "f:spec": {
            "f:tags": {
                f'k:{{"name":"v{t}"}}': {".": {}, **_fields("from", "name", "referencePolicy")}
                for t in range(TAGS)
            }
        },
    }
    stream: Obj = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": "6f1c2a9e-3b1d-4c55-9a5e-2f7d1c0b9e11",
            "resourceVersion": "48213",
            "generation": 2,
            "creationTimestamp": CREATED,
            "annotations": {"kubectl.kubernetes.io/last-applied": '{"apiVersion":"..."}'},
            "managedFields": [_managed("kubectl-client-side-apply", "Update", spec_fields)],
        },
        "spec": {"lookupPolicy": {"local": False}, "tags": spec_tags},
    }
    if status:
        stream["status"] = {
            "dockerImageRepository": f"{REGISTRY}/{NAMESPACE}/{name}",
            "tags": [
                {
                    "tag": f"v{t}",
                    "items": [
                        {
                            "created": CREATED,
                            "dockerImageReference": f"{REGISTRY}/{NAMESPACE}/{name}@{digest(n)}",
                            "image": digest(n),
                            "generation": 2,
                        }
                        for n in range(t * HISTORY, t * HISTORY + history)
                    ],
                }
                for t in range(TAGS)
            ],
        }
        status_fields = {
            "f:status": {
                "f:dockerImageRepository": {},
                "f:tags": {f'k:{{"tag":"v{t}"}}': _fields("items", "tag") for t in range(TAGS)},
            }
        }
        stream["metadata"]["managedFields"].append(
            _managed("registry", "Update", status_fields, subresource="status")
        )
    return stream


def serviceaccount(name: str) -> Obj:
    """A ServiceAccount at CREATE admission: no uid yet, managedFields already set."""
    return {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": "builder", "app.kubernetes.io/part-of": "ci"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}\n"},
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": CREATED,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:annotations": {
                                ".": {},
                                "f:kubectl.kubernetes.io/last-applied-configuration": {},
                            },
                            "f:labels": {
                                ".": {},
                                "f:app.kubernetes.io/name": {},
                                "f:app.kubernetes.io/part-of": {},
                            },
                        }
                    },
                }
            ],
        },
    }


def admission_review(
    group: str,
    kind: str,
    resource: str,
    operation: str,
    obj: Obj,
    old: Obj | None = None,
    sub_resource: str = "",
) -> bytes:
    """An AdmissionReview as kube-apiserver sends it: compact JSON, user with groups and
    extra, the request's kind and resource twice, and the operation's options."""
    version = "v1"
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    options_kind = "CreateOptions" if operation == "CREATE" else "UpdateOptions"
    request: Obj = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"]["name"],
        "namespace": NAMESPACE,
        "operation": operation,
        "userInfo": {
            "username": "kubernetes-admin",
            "uid": "aws-iam-authenticator:1234:ABCD",
            "groups": ["system:masters", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=9f86d08"]},
        },
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {
            "kind": options_kind,
            "apiVersion": "meta.k8s.io/v1",
            "fieldManager": "kubectl-client-side-apply",
            "fieldValidation": "Strict",
        },
    }
    if sub_resource:
        request["subResource"] = sub_resource
    review = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}
    return json.dumps(review, separators=(",", ":")).encode()


def push_review(tag: str, image: int) -> bytes:
    """A PushReview of one image of ``LAYERS`` layers, as the registry sends it."""
    review = {
        "apiVersion": "image.alauda.io/v1",
        "kind": "PushReview",
        "spec": {
            "namespace": NAMESPACE,
            "repository": "app",
            "tag": tag,
            "digest": digest(image),
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": digest(image + 7_000_000), "size": 1469},
            "layers": [
                {"digest": digest(image * 100 + i + 8_000_000), "size": 2_811_478 + i}
                for i in range(LAYERS)
            ],
        },
    }
    return json.dumps(review, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Case:
    """One kind of request: where it goes, its body, and what our app must answer."""

    name: str
    path: str
    body: bytes
    expect: str
    """A substring of our answer that shows the request took the intended path."""
    headers: tuple[tuple[str, str], ...] = ()


NEW_IMAGE: Final = TAGS * HISTORY + 1
"""The digest a status update or push adds: one the stream has not seen."""


def cases() -> list[Case]:
    """The bodies, from the cheapest to the largest."""
    stream = imagestream()
    edited = copy.deepcopy(stream)
    edited["spec"]["tags"][0]["from"]["name"] = "registry.example.com/app:v0-fixed"
    grown = copy.deepcopy(stream)
    grown["status"]["tags"][0]["items"].insert(
        0,
        {
            "created": CREATED,
            "dockerImageReference": f"{REGISTRY}/{NAMESPACE}/app@{digest(NEW_IMAGE)}",
            "image": digest(NEW_IMAGE),
            "generation": 3,
        },
    )
    fresh = imagestream("web", status=False)
    allowed = '"allowed":true'
    return [
        Case(
            "sa-create",
            "/mutate/serviceaccounts",
            admission_review(
                "", "ServiceAccount", "serviceaccounts", "CREATE", serviceaccount("builder")
            ),
            '"patchType":"JSONPatch"',
        ),
        Case(
            "is-create",
            "/validate/imagestreams",
            admission_review("image.alauda.io", "ImageStream", "imagestreams", "CREATE", fresh),
            allowed,
        ),
        Case(
            "is-update",
            "/validate/imagestreams",
            admission_review(
                "image.alauda.io", "ImageStream", "imagestreams", "UPDATE", edited, stream
            ),
            allowed,
        ),
        Case(
            "is-status",
            "/validate/imagestreams",
            admission_review(
                "image.alauda.io", "ImageStream", "imagestreams", "UPDATE", grown, stream, "status"
            ),
            allowed,
        ),
        Case(
            "pushreview",
            "/v1/pushreviews",
            push_review("v3", NEW_IMAGE),
            allowed,
            (("Authorization", f"Bearer {TOKEN}"),),
        ),
    ]


# --- our app, with its I/O in memory --------------------------------------------------------


class Caches:
    """What the watch caches would hold: one namespace with limits, its stream and Images."""

    def __init__(self) -> None:
        self._limit_ranges = [
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": {
                    "name": "registry-limits",
                    "namespace": NAMESPACE,
                    "uid": "0c3f6d1e-8a2b-4e1f-9b7a-5d4c3b2a1f00",
                    "resourceVersion": "1207",
                },
                "spec": {
                    "limits": [
                        {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}},
                        {"type": "alauda.io/Image", "max": {"storage": "1Gi"}},
                        {
                            "type": "alauda.io/ImageStream",
                            "max": {"alauda.io/image-tags": "50", "alauda.io/images": "500"},
                        },
                    ]
                },
            }
        ]
        self._stream = imagestream()
        self._images = {digest(n): image_object(n) for n in range(NEW_IMAGE + 1)}

    def not_ready(self) -> str | None:
        return None

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        return {"kubernetes.io/metadata.name": name}

    def pull_secret(self, namespace: str, name: str) -> Obj | None:
        return None  # a new ServiceAccount: the reconciler has not made its Secret yet

    def limit_ranges_in(self, namespace: str) -> list[Obj]:
        return self._limit_ranges if namespace == NAMESPACE else []

    def image(self, digest: str) -> Obj | None:
        return self._images.get(digest)

    def imagestream(self, namespace: str, name: str) -> Obj | None:
        return self._stream if (namespace, name) == (NAMESPACE, "app") else None


class Quota:
    """Room in the quota: the charge's own cost (a write) is the latency benchmark's."""

    def judge(self, namespace: str) -> ChargePlan:
        return ChargePlan(Decision.allow())

    def charge(self, namespace: str) -> ChargePlan:
        return ChargePlan(Decision.allow())


@dataclass
class _Answer:
    data: bytes


class ReviewApi:
    """TokenReview and SubjectAccessReview answers, for the first call (then cached)."""

    def create_token_review(self, body: dict[str, Any], **kwargs: Any) -> _Answer:
        status = {
            "authenticated": body["spec"]["token"] == TOKEN,
            "audiences": body["spec"].get("audiences", []),
            "user": {
                "username": "system:serviceaccount:image-registry-system:registry",
                "uid": "1b0f2c9e-0000-4000-8000-000000000001",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/pod-name": ["registry-0"]},
            },
        }
        return _Answer(json.dumps({"status": status}).encode())

    def create_subject_access_review(self, body: dict[str, Any], **kwargs: Any) -> _Answer:
        return _Answer(b'{"status": {"allowed": true}}')


class Images:
    def read_image(self, digest: str, *, timeout: float) -> Obj | None:
        return None


class Recorder:
    def record(self, *args: Any, **kwargs: Any) -> None:
        return None


def our_app() -> Flask:
    api = ReviewApi()
    return assemble_app(
        Caches(),
        Quota(),
        Images(),
        Authenticator(api, audiences=["image-registry.alauda.io"]),
        Authorizer(api),
        Recorder(),
        frozenset({"kube-system", "image-registry-system"}),
        require_client_certificate=True,
    )


# --- the bare app -----------------------------------------------------------------------------

ONE_OP_PATCH: Final = base64.b64encode(
    json.dumps([{"op": "add", "path": "/metadata/annotations/bare", "value": "yes"}]).encode()
).decode()


def bare_app(paths: Iterable[str]) -> Flask:
    """The least a Flask app can do for these bodies: parse, answer with a one-op patch."""
    app = Flask("bare", static_folder=None)

    def review() -> Response:
        body = json.loads(request.get_data())
        if body.get("kind") == "PushReview":
            body["status"] = {"allowed": True, "reason": "", "message": ""}
            return jsonify(body)
        response = {"uid": body["request"]["uid"], "allowed": True}
        response.update(patchType="JSONPatch", patch=ONE_OP_PATCH)
        return jsonify(
            {"apiVersion": body["apiVersion"], "kind": body["kind"], "response": response}
        )

    for path in set(paths):
        app.add_url_rule(path, endpoint=path, view_func=review, methods=["POST"])
    return app


# --- calling an app as gunicorn does ----------------------------------------------------------


class _PeerSocket:
    """The TLS socket of an API server that presented a verified client certificate."""

    def getpeercert(self) -> dict[str, Any]:
        return {"subject": ((("commonName", "kube-apiserver"),),)}


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environ(case: Case) -> dict[str, Any]:
    """The WSGI environ gunicorn builds for a keep-alive POST over TLS (body not included)."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": case.path,
        "RAW_URI": case.path + "?timeout=10s",
        "QUERY_STRING": "timeout=10s",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "image-registry-webhook.image-registry-system.svc",
        "SERVER_PORT": "8443",
        "SERVER_SOFTWARE": "gunicorn/23.0.0",
        "REMOTE_ADDR": "10.0.0.1",
        "REMOTE_PORT": "51234",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(case.body)),
        "HTTP_HOST": "image-registry-webhook.image-registry-system.svc:443",
        "HTTP_USER_AGENT": "kube-apiserver-admission",
        "HTTP_ACCEPT": "application/json, */*",
        "HTTP_ACCEPT_ENCODING": "gzip",
        "HTTP_CONTENT_TYPE": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": None,
        "wsgi.input_terminated": True,
        "gunicorn.socket": _PeerSocket(),
    }
    for name, value in case.headers:
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app: WsgiApp, template: dict[str, Any], body: bytes) -> tuple[str, bytes]:
    """One request: status line and body."""
    env = dict(template)
    env["wsgi.input"] = io.BytesIO(body)
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    result = app(env, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0], data


def cpu_per_request(app: WsgiApp, case: Case, requests: int) -> float:
    """Microseconds of this process's CPU per request, over ``requests`` requests."""
    template = environ(case)
    body = case.body
    started = time.process_time()
    for _ in range(requests):
        call(app, template, body)
    return (time.process_time() - started) / requests * 1e6


def check(app: WsgiApp, case: Case) -> None:
    """Refuse to measure a request that does not take the path it is meant to."""
    status, data = call(app, environ(case), case.body)
    if not status.startswith("200") or case.expect.encode() not in data:
        raise SystemExit(f"{case.name}: our app answered {status}: {data[:300]!r}")


@contextmanager
def served_logging() -> Iterator[None]:
    """The server's own log set-up (JSON lines at INFO), writing to /dev/null, so the
    per-request log line costs what it costs in ``serve``; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with open(os.devnull, "w") as sink:
        configure_logging("INFO", DEFAULT_LOG_FORMAT, stream=sink)
        try:
            yield
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])


def profile(app: WsgiApp, case: Case, requests: int, *, with_cprofile: bool) -> None:
    """``requests`` requests of ``case``, for a sampling profiler to attach to (py-spy), or
    under cProfile: then the top functions by own and by cumulative time."""
    template = environ(case)
    profiler = cProfile.Profile() if with_cprofile else None
    if profiler:
        profiler.enable()
    for _ in range(requests):
        call(app, template, case.body)
    if profiler is None:
        return
    profiler.disable()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{NAME}-{case.name}.prof"
    profiler.dump_stats(path)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    progress(f"profile written to {path}")


def main(argv: list[str]) -> list[Figure]:
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="turns per app and body")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests per turn")
    names = [case.name for case in cases()]
    parser.add_argument("--only", choices=names, action="append", help="measure these bodies")
    parser.add_argument(
        "--profile",
        choices=names,
        help="only run our app on this body, rounds x requests times (for py-spy to attach)",
    )
    parser.add_argument("--cprofile", action="store_true", help="with --profile: under cProfile")
    args = parser.parse_args(argv)

    selected = [case for case in cases() if case.name in (args.only or names)]
    ours = our_app()
    bare = bare_app(case.path for case in selected)
    report = Report(NAME)
    with served_logging():
        for case in selected:
            check(ours, case)
            cpu_per_request(ours, case, WARMUP_REQUESTS)
            if not args.profile:  # a profile shows our app alone
                cpu_per_request(bare, case, WARMUP_REQUESTS)
        if args.profile:
            [case] = [c for c in selected if c.name == args.profile]
            profile(ours, case, args.requests * args.rounds, with_cprofile=args.cprofile)
            return []
        for case in selected:
            progress(
                f"{case.name}: {args.rounds} rounds of {args.requests} requests "
                f"({len(case.body):,} bytes each)"
            )
            mine, theirs = alternate(
                args.rounds,
                functools.partial(cpu_per_request, ours, case, args.requests),
                functools.partial(cpu_per_request, bare, case, args.requests),
            )
            report.series[f"{case.name}/ours"] = mine
            report.series[f"{case.name}/bare"] = theirs
            report.add(
                Figure(
                    NAME,
                    f"{case.name} CPU/request",
                    statistics.median(mine),
                    "us",
                    statistics.median(theirs),
                    "bare Flask, one-op patch",
                    Target("ratio", "<=", round(APP_CPU_RATIO_BOUND, 2)),
                )
            )
    report.notes.append(
        "CPU time of this process per request, median of alternating rounds; in-process WSGI "
        "calls (no TLS, no sockets). Target: at most 1/0.7 of the bare app's CPU."
    )
    report.write()
    plots.bars(
        f"{NAME}-cpu",
        "CPU per request inside the WSGI app (us)",
        {
            f"{f.name.split()[0]} {who}": v
            for f in report.figures
            for who, v in (("ours", f.value), ("bare", f.baseline or 0.0))
        },
        unit="us of CPU per request",
    )
    return report.figures
