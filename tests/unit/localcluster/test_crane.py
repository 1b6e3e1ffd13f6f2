"""crane's credentials and environment: a pull secret's shape, and nothing inherited."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from localcluster.crane import Crane, docker_config


def test_docker_config_auth_is_username_and_token_as_a_pull_secret_has_them() -> None:
    config = docker_config("127.0.0.1:5000", "any", "tok:en")
    auth = config["auths"]
    assert isinstance(auth, dict)
    assert base64.b64decode(auth["127.0.0.1:5000"]["auth"]) == b"any:tok:en"


def test_environment_is_its_own_home_and_ca_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", "/elsewhere")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    crane = Crane(tmp_path / "ca.crt", tmp_path / "home", binary=Path("/bin/true"))
    env = crane.env()
    assert env["SSL_CERT_FILE"] == str(tmp_path / "ca.crt")
    assert env["DOCKER_CONFIG"] == str(tmp_path / "home" / ".docker")
    assert env["HOME"] == str(tmp_path / "home")
    assert set(env) == {"PATH", "HOME", "DOCKER_CONFIG", "SSL_CERT_FILE"}


def test_credentials_file_is_private(tmp_path: Path) -> None:
    crane = Crane(tmp_path / "ca.crt", tmp_path / "home", binary=Path("/bin/true"))
    crane.write_credentials("127.0.0.1:5000", "any", "secret-token")
    assert (crane.config_dir / "config.json").stat().st_mode & 0o077 == 0
