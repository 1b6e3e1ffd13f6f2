"""The registry's configuration: what the front door relies on it to do and not do."""

from __future__ import annotations

from pathlib import Path

from localcluster.registry import registry_config


def config(tmp_path: Path) -> dict[str, object]:
    return registry_config(
        port=5000,
        storage_dir=tmp_path / "storage",
        cert_file=tmp_path / "tls.crt",
        key_file=tmp_path / "tls.key",
        secret="s",
    )


def test_serves_tls_on_loopback_with_relative_locations(tmp_path: Path) -> None:
    http = config(tmp_path)["http"]
    assert http == {
        "addr": "127.0.0.1:5000",
        "secret": "s",
        "relativeurls": True,
        "tls": {"certificate": str(tmp_path / "tls.crt"), "key": str(tmp_path / "tls.key")},
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }


def test_stores_on_the_filesystem_and_deletes_tags_when_asked(tmp_path: Path) -> None:
    """distribution answers a tag DELETE with UNSUPPORTED unless deletes are enabled; the
    controller deletes the tags no ImageStream holds (issue 17, item 6)."""
    storage = config(tmp_path)["storage"]
    assert isinstance(storage, dict)
    assert storage["filesystem"] == {"rootdirectory": str(tmp_path / "storage")}
    assert storage["delete"] == {"enabled": True}


def test_no_blob_descriptor_cache_takes_a_blob_for_a_manifest(tmp_path: Path) -> None:
    """distribution's repository-scoped descriptor cache answers a manifest read by digest
    for any blob linked into the repository (issue 17, item 1)."""
    storage = config(tmp_path)["storage"]
    assert isinstance(storage, dict)
    cache = storage.get("cache") or {}
    assert "blobdescriptor" not in cache and "layerinfo" not in cache


def test_purges_upload_sessions_an_hour_old_every_ten_minutes(tmp_path: Path) -> None:
    """Uploads the front door cut or refused, and abandoned ones, are reclaimed."""
    storage = config(tmp_path)["storage"]
    assert isinstance(storage, dict)
    assert storage["maintenance"] == {
        "uploadpurging": {"enabled": True, "age": "1h", "interval": "10m", "dryrun": False}
    }
