"""crane, a real OCI client, run the way a developer runs it: the tests' and benchmarks' hands.

Each :class:`Crane` has a home of its own (its Docker config, hence its credentials) and
trusts exactly one CA bundle through ``SSL_CERT_FILE``, which Go honours on Linux, rather
than ``--insecure``: TLS is checked as for a real registry. Commands return the completed
process without raising, so a test asserts on the client's own output, as a user reads it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from localcluster.ocitools import crane_binary

COMMAND_TIMEOUT_SECONDS = 300.0
"""Bound on one crane command: a push of the benchmarks' largest images over loopback takes
seconds; this only stops a hung client from hanging the test run."""
PULL_FORMAT = "oci"
"""``crane pull --format``: an OCI layout, comparable blob by blob with the pushed one (the
default tarball format needs real tar layers, which test images do not have)."""


def docker_config(registry: str, username: str, password: str) -> dict[str, object]:
    """A Docker ``config.json`` with one ``auths`` entry, the shape of a managed pull
    secret's ``.dockerconfigjson``: ``auth`` is base64 of ``username:password``."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {registry: {"auth": auth}}}


class Crane:
    """The crane binary with its own home directory and trusted CA."""

    def __init__(self, ca_file: Path, home_dir: Path, *, binary: Path | None = None) -> None:
        self.binary = binary or crane_binary()
        self.ca_file = ca_file
        self.home_dir = home_dir
        self.config_dir = home_dir / ".docker"
        """``DOCKER_CONFIG``: where ``config.json`` (the credentials) lives."""
        self.config_dir.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        """Nothing from our own environment but ``PATH``: no stray credentials, proxies
        or CA bundles of the machine decide what crane does."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home_dir),
            "DOCKER_CONFIG": str(self.config_dir),
            "SSL_CERT_FILE": str(self.ca_file),
        }

    def run(
        self, *args: str, stdin: str | None = None, verbose: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``crane ARGS``; ``verbose`` adds ``--verbose``: every HTTP request and response
        on stderr (crane redacts Authorization headers and token bodies itself)."""
        argv = [str(self.binary), *args, *(["--verbose"] if verbose else [])]
        return subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def push(
        self, layout_dir: Path, ref: str, *, index: bool = False, verbose: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Push the layout's one entry (an image or an index) to ``ref``; stdout is the
        pushed reference by digest. ``index``: push the layout's ``index.json`` itself."""
        flags = ["--index"] if index else []
        return self.run("push", *flags, str(layout_dir), ref, verbose=verbose)

    def pull(
        self, ref: str, dest: Path, *, verbose: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Pull ``ref`` into ``dest`` as an OCI layout."""
        return self.run("pull", f"--format={PULL_FORMAT}", ref, str(dest), verbose=verbose)

    def digest(self, ref: str) -> subprocess.CompletedProcess[str]:
        """The manifest digest the registry serves for ``ref`` (stdout, one line)."""
        return self.run("digest", ref)

    def manifest(self, ref: str) -> subprocess.CompletedProcess[str]:
        """The manifest bytes the registry serves for ``ref`` (stdout)."""
        return self.run("manifest", ref)

    def copy(
        self, source: str, dest: str, *, verbose: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Registry to registry (or repository to repository: a cross-repository mount)."""
        return self.run("copy", source, dest, verbose=verbose)

    def login(
        self, registry: str, username: str, password: str
    ) -> subprocess.CompletedProcess[str]:
        """``crane auth login``, the password on stdin so it never shows in a process list."""
        return self.run(
            "auth", "login", registry, "--username", username, "--password-stdin", stdin=password
        )

    def write_credentials(self, registry: str, username: str, password: str) -> None:
        """Credentials as a pull secret carries them, written straight to ``config.json``
        (no round trip to the registry, unlike :meth:`login`)."""
        path = self.config_dir / "config.json"
        path.write_text(json.dumps(docker_config(registry, username, password)))
        path.chmod(0o600)

    def forget_credentials(self) -> None:
        """Back to no credentials at all: anonymous requests."""
        (self.config_dir / "config.json").unlink(missing_ok=True)
