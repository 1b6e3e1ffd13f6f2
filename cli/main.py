"""The ``image-registry-webhook`` command: ``serve`` (webhooks + PushReview), ``controller``,
and ``webhook-configurations`` (what to install so the API server calls ``serve``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from cli.logs import configure_logging
from controller.certificates.rotate import WAIT_SECONDS
from kube import settings as settings_mod

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image-registry-webhook",
        description="Registry v2 admission webhooks, PushReview API and controllers.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the admission webhooks and the PushReview API")
    settings_mod.add_common_flags(serve)
    settings_mod.add_serve_flags(serve)
    configurations = sub.add_parser(
        "webhook-configurations",
        help="print the webhook configurations as YAML, for kubectl apply (the serving "
        "pods may not write them)",
    )
    settings_mod.add_common_flags(configurations)
    settings_mod.add_serve_flags(configurations)
    controller = sub.add_parser(
        "controller",
        help="run the pull-secret and quota reconcilers and the certificate manager",
    )
    settings_mod.add_common_flags(controller)
    settings_mod.add_controller_flags(controller)
    certificates = sub.add_parser("certs", help="the built-in certificates")
    actions = certificates.add_subparsers(dest="action", required=True)
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
            print(f"image-registry-webhook: {err}", file=sys.stderr)
            return 1
    print(message)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_mod.from_args(args)
    configure_logging(settings.log_level)
    try:
        if args.command == "webhook-configurations":
            from webhook.main import print_webhook_configurations

            return print_webhook_configurations(settings)
        if args.command == "certs":
            return _rotate_certificates(settings, args.timeout)
        if args.command == "serve":
            from webhook.main import run_server

            return run_server(settings)
        from controller.main import run_controller

        return run_controller(settings)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except Exception as err:  # last resort: one clear line, the traceback only at DEBUG
        log.debug("fatal error", exc_info=True)
        print(f"image-registry-webhook: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
