"""The ``image-registry-webhook`` command: ``serve`` (webhooks + PushReview), ``frontdoor``
(the registry API in front of a registry), ``controller``,
``webhook-configurations`` (what to install so the API server calls ``serve``) and
``certs rotate``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version

from cli.logs import configure_logging
from controller.certificates.rotate import WAIT_SECONDS
from kube import flags
from kube import settings as settings_mod
from kube.flags import subcommands
from kube.logfields import fields

__all__ = ["build_parser", "main", "parse", "subcommands"]

log = logging.getLogger(__name__)

PROG = "image-registry-webhook"
DISTRIBUTION = "registry-v2-policy"
"""The package whose metadata gives ``--version`` (pyproject.toml ``[project] name``)."""


def package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Registry v2 admission webhooks, PushReview API and controllers. Every "
        "flag is also an environment variable: see docs/configuration.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )
    serve = sub.add_parser("serve", help="serve the admission webhooks and the PushReview API")
    settings_mod.add_common_flags(serve)
    settings_mod.add_serve_flags(serve)
    settings_mod.add_metrics_flags(serve)
    configurations = sub.add_parser(
        "webhook-configurations",
        help="print the webhook configurations as YAML, for kubectl apply (the serving "
        "pods may not write them)",
    )
    settings_mod.add_common_flags(configurations)
    settings_mod.add_serve_flags(configurations)
    frontdoor = sub.add_parser(
        "frontdoor",
        help="serve the registry API in front of a registry: every push judged by the image "
        "limits and quota, every request authenticated with a registry token",
    )
    settings_mod.add_common_flags(frontdoor)
    settings_mod.add_frontdoor_flags(frontdoor)
    settings_mod.add_metrics_flags(frontdoor)
    controller = sub.add_parser(
        "controller",
        help="run the pull-secret and quota reconcilers and the certificate manager",
    )
    settings_mod.add_common_flags(controller)
    settings_mod.add_controller_flags(controller)
    settings_mod.add_metrics_flags(controller)
    certificates = sub.add_parser("certs", help="the built-in certificates")
    actions = certificates.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do"
    )
    rotate = actions.add_parser(
        "rotate",
        help="rotate the CA and serving certificate now (the controller's leader does it, "
        "with the same overlap as a scheduled renewal)",
    )
    settings_mod.add_connection_flags(rotate)
    rotate.add_argument(
        "--timeout",
        type=float,
        default=WAIT_SECONDS,
        help="seconds to wait for the leader to start the rotation; 0: do not wait "
        "(default %(default)s)",
    )
    return parser


def _rotate_certificates(settings: settings_mod.Settings, timeout: float) -> int:
    import datetime as dt

    from kubernetes import client

    from controller.certificates.rotate import RotationError, rotate
    from kube.client import api_client

    with api_client(settings.kubeconfig) as api:
        try:
            message = rotate(
                client.CoreV1Api(api), settings.namespace, timeout, dt.datetime.now(dt.UTC)
            )
        except RotationError as err:
            log.error("certs rotate: %s", err)
            return 1
    print(message)
    return 0


def parse(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[str, settings_mod.Settings, list[str]]:
    """The command, its settings and the deprecation notices; exits 2 on bad input."""
    command, settings, notices, _ = parse_all(argv, environ)
    return command, settings, notices


def parse_all(
    argv: Sequence[str] | None, environ: Mapping[str, str]
) -> tuple[str, settings_mod.Settings, list[str], argparse.Namespace]:
    """``parse``, plus the parsed arguments (for a subcommand's own options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        notices = flags.resolve(args, environ)
    except flags.FlagError as err:
        subcommands(parser)[args.command].error(str(err))
    return args.command, settings_mod.from_args(args), notices, args


def main(argv: Sequence[str] | None = None) -> int:
    command, settings, deprecations, args = parse_all(argv, os.environ)
    configure_logging(settings.log_level, settings.log_format)
    for notice in deprecations:
        log.warning("%s", notice)
    # As Kubernetes components print their flags: what this process was told. Settings
    # hold file paths, never a secret's value.
    log.debug("settings", extra=fields(command=command, **dataclasses.asdict(settings)))
    try:
        if command == "webhook-configurations":
            from webhook.main import print_webhook_configurations

            return print_webhook_configurations(settings)
        if command == "certs":
            return _rotate_certificates(settings, args.timeout)
        if command in ("serve", "frontdoor"):
            # Named before anything imports prometheus_client (webhook.main does).
            from serving.workermetrics import shared_directory

            with shared_directory():
                if command == "frontdoor":
                    from frontdoor.main import run_frontdoor

                    return run_frontdoor(settings)
                from webhook.main import run_server

                return run_server(settings)
        from controller.main import run_controller

        return run_controller(settings)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as err:  # last resort: one clear line, the traceback only at DEBUG
        log.error("fatal error: %s", err, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1


if __name__ == "__main__":
    sys.exit(main())
