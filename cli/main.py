"""The ``image-registry-webhook`` command: ``serve`` (webhooks + PushReview), ``frontdoor``
(the registry API in front of a registry), ``controller``, ``node-ca`` (the registry's CAs
into a node's containerd),
``webhook-configurations`` (what to install so the API server calls ``serve``),
``certs rotate`` and ``prune images``.

What a newcomer meets first is refused here, in one line, before any process starts:
a flag of another command, a door without its certificate, a front door without its
registry, and no way to reach an API server. The tools (``certs rotate``,
``webhook-configurations``) speak text: they answer a person at a terminal; the processes
log in ``--log-format`` (JSON by default), for a log pipeline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version

from cli.flags import FlagError, add_flags, command_parser, resolve, subcommands
from cli.logs import configure_logging
from cli.options import COMMAND_FLAGS, GLOBAL_FLAGS
from controller.certificates.rotate import WAIT_SECONDS
from kube.client import NoConfiguration, load_configuration
from kube.logfields import fields
from serving.config import ServingConfig

__all__ = ["build_parser", "main", "parse", "subcommands"]

log = logging.getLogger(__name__)

PROG = "image-registry-webhook"
DISTRIBUTION = "registry-v2-policy"
"""The package whose metadata gives ``--version`` (pyproject.toml ``[project] name``)."""
TOOLS = ("webhook-configurations", "certs rotate", "prune images")
NO_CLUSTER_EXIT = 1
"""A process that cannot reach any API server exits as a failed start, not a usage error
(2): the command line may be right, the machine lacks a kubeconfig."""


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, key: str, help: str
) -> argparse.ArgumentParser:
    """A subcommand taking the global flags (after it too) and ``COMMAND_FLAGS[key]``."""
    parser = sub.add_parser(name, help=help, description=help)
    add_flags(parser, GLOBAL_FLAGS, inherited=True)
    add_flags(parser, COMMAND_FLAGS[key])
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Registry v2 admission webhooks, PushReview API, registry front door and "
        "controllers. Every flag is also an environment variable: see docs/configuration.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_flags(parser, GLOBAL_FLAGS)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )
    _command(sub, "serve", "serve", "serve the admission webhooks and the PushReview API")
    _command(
        sub,
        "webhook-configurations",
        "webhook-configurations",
        "print the webhook configurations as YAML, for kubectl apply (the serving "
        "pods may not write them)",
    )
    _command(
        sub,
        "frontdoor",
        "frontdoor",
        "serve the registry API in front of a registry: every push judged by the image "
        "limits and quota, every request authenticated with a registry token",
    )
    _command(
        sub,
        "controller",
        "controller",
        "run the pull-secret and quota reconcilers and the certificate manager",
    )
    _command(
        sub,
        "node-ca",
        "node-ca",
        "mirror the registry CAs of the mounted ConfigMap image-registry-certificates into "
        "this node's containerd certs.d (the node-ca DaemonSet); needs no API server",
    )
    certificates = sub.add_parser("certs", help="the built-in certificates")
    add_flags(certificates, GLOBAL_FLAGS, inherited=True)
    actions = certificates.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do"
    )
    rotate = _command(
        actions,
        "rotate",
        "certs rotate",
        "rotate the CA and serving certificate now (the controller's leader does it, "
        "with the same overlap as a scheduled renewal)",
    )
    rotate.add_argument(
        "--timeout",
        type=float,
        default=WAIT_SECONDS,
        help="seconds to wait for the leader to start the rotation; 0: do not wait "
        "(default %(default)s)",
    )
    prune = sub.add_parser("prune", help="remove what the registry no longer needs")
    add_flags(prune, GLOBAL_FLAGS, inherited=True)
    prunables = prune.add_subparsers(
        dest="action", required=True, metavar="WHAT", help="what to prune"
    )
    _command(
        prunables,
        "images",
        "prune images",
        "remove old tag history, the Images no ImageStream references and their "
        "manifests (oc adm prune images); a dry run unless --confirm",
    )
    return parser


def command_name(args: argparse.Namespace) -> str:
    """``serve``, ..., or ``certs rotate``: the key of ``COMMAND_FLAGS``."""
    action = getattr(args, "action", None)
    return f"{args.command} {action}" if action else str(args.command)


def _foreign(flags: Sequence[str], own: str) -> str:
    """Which other commands take the unknown ``flags``: said after argparse's own error."""
    hints = []
    for text in flags:
        option = text.split("=", 1)[0]
        takers = [
            name
            for name, declared in COMMAND_FLAGS.items()
            if name != own and any(option in (f.option, *f.deprecated) for f in declared)
        ]
        if takers:
            hints.append(f"{option} is a flag of {', '.join(takers)}, not of {own}")
    return "; " + "; ".join(hints) if hints else ""


def parse(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[argparse.Namespace, list[str]]:
    """The resolved arguments (``args.command`` and every flag of it) and the deprecation
    notices; exits 2 on bad input, naming a flag that belongs to another command."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    name = command_name(args)
    own = command_parser(parser, name)
    if unknown:
        own.error(f"unrecognized arguments: {' '.join(unknown)}{_foreign(unknown, name)}")
    try:
        notices = resolve(args, environ)
    except FlagError as err:
        own.error(str(err))
    return args, notices


def usage_problem(args: argparse.Namespace, name: str) -> str | None:
    """What a door cannot start without, said before it binds a port."""
    if name == "prune images" and args.prune_registry and not args.registry_config:
        return "--prune-registry needs --registry-config (the registry's configuration file)"
    if name == "frontdoor" and not args.upstream_registry:
        return "frontdoor needs --upstream-registry (the https:// URL of the registry behind it)"
    if name in ("serve", "frontdoor"):
        return ServingConfig(
            process=name,
            bind=args.bind,
            tls_cert_file=args.tls_cert_file,
            tls_private_key_file=args.tls_private_key_file,
            dev_certs_dir=args.dev_certs_dir,
        ).certificate_problem()
    return None


def no_cluster(name: str, kubeconfig: str | None) -> str | None:
    """One line when ``name`` has no way to reach an API server; None when it has."""
    try:
        load_configuration(kubeconfig)
    except NoConfiguration as err:
        if kubeconfig:
            return (
                f"{PROG} {name}: cannot use the kubeconfig {kubeconfig} "
                f"(--kubeconfig or KUBECONFIG): {err}"
            )
        return (
            f"{PROG} {name}: no API server to talk to: give --kubeconfig, set KUBECONFIG, "
            f"or run in a cluster (in-cluster config); ~/.kube/config: {err}"
        )
    return None


def _fail(name: str, message: str) -> int:
    """A tool's failure: one text line on stderr, for the person who ran it."""
    print(f"{PROG} {name}: {message}", file=sys.stderr)
    return 1


def _rotate_certificates(args: argparse.Namespace) -> int:
    import datetime as dt

    from kubernetes import client

    from controller.certificates.rotate import RotationError, rotate
    from kube.client import api_client

    with api_client(args.kubeconfig) as api:
        try:
            message = rotate(
                client.CoreV1Api(api), args.namespace, args.timeout, dt.datetime.now(dt.UTC)
            )
        except RotationError as err:
            return _fail("certs rotate", str(err))
    print(message)
    return 0


def run(args: argparse.Namespace, name: str) -> int:
    """Start what ``name`` is, with its typed configuration (``cli.configs``)."""
    if name == "webhook-configurations":
        from cli.configs import webhook_config
        from webhook.main import print_webhook_configurations

        return print_webhook_configurations(webhook_config(args))
    if name == "node-ca":  # the kubelet brings its ConfigMap: no API server to reach
        from cli.configs import node_ca_config
        from nodeca.main import run_node_ca

        return run_node_ca(node_ca_config(args))
    problem = no_cluster(name, args.kubeconfig)
    if problem is not None:
        print(problem, file=sys.stderr)
        return NO_CLUSTER_EXIT
    if name == "certs rotate":
        return _rotate_certificates(args)
    if name == "prune images":
        from cli.configs import prune_config
        from controller.imageprune.run import run_prune

        return run_prune(prune_config(args))
    if name in ("serve", "frontdoor"):
        # Named before anything imports prometheus_client (webhook.main does).
        from serving.workermetrics import shared_directory

        with shared_directory():
            from cli import configs

            if name == "frontdoor":
                from frontdoor.main import run_frontdoor

                return run_frontdoor(*configs.frontdoor_configs(args))
            from webhook.main import run_server

            return run_server(*configs.serve_configs(args))
    from cli.configs import controller_config
    from controller.main import run_controller

    return run_controller(controller_config(args))


def main(argv: Sequence[str] | None = None) -> int:
    args, deprecations = parse(argv, os.environ)
    name = command_name(args)
    usage = usage_problem(args, name)
    if usage is not None:
        command_parser(build_parser(), name).error(usage)
    configure_logging(args.log_level, args.log_format)
    for notice in deprecations:
        log.warning("%s", notice)
    # As Kubernetes components print their flags: what this process was told. Flags
    # hold file paths, never a secret's value.
    told = {key: value for key, value in vars(args).items() if not key.startswith("_")}
    log.debug("settings", extra=fields(**{**told, "command": name}))
    try:
        return run(args, name)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as err:  # last resort: one clear line, the traceback only at DEBUG
        if name in TOOLS:
            return _fail(name, str(err))
        log.error("fatal error: %s", err, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1


if __name__ == "__main__":
    sys.exit(main())
