"""The upstream registry as the tag reconciler and the pruner reach it: its catalog, a
repository's tags, a tag's deletion and (the pruner's) a manifest's, over the distribution
spec's API (end-8a/8b, end-9, catalog).

The reconciler talks to the registry behind the front door, never through it: the front
door answers tag lists from the ImageStreams (the very thing this compares against) and
deletes only what a stream records. The reconciler deletes only the tag (``DELETE
/v2/<name>/manifests/<tag>``), never a manifest: the manifest stays for the digests the
Image API still records, and the registry's garbage collection reclaims what nothing
references. The pruner deletes a manifest by digest once its Image is deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError

CONNECT_SECONDS: Final = 5.0
READ_SECONDS: Final = 30.0
"""One list or delete on the registry: it reads a directory or a link file, no blob."""
PAGE_SIZE: Final = 1000
"""Entries asked per catalog or tag list page: distribution's default ``catalog.maxentries``
(1000) and the most it answers in one page."""
MAX_ANSWER_BYTES: Final = 4 * 1024 * 1024
"""One page read whole: 1000 names of at most 255 characters is some 260 KiB; more is not
an answer of the API."""
MAX_PAGES: Final = 10_000
"""Pages followed in one listing (ten million repositories): a registry whose Link never
ends would otherwise hold a worker for ever."""
POOL_CONNECTIONS: Final = 2
"""Keep-alive connections: the reconciler's one worker and the catalog lister."""
_NEXT: Final = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
"""The ``Link`` header's next page (RFC 8288), as distribution writes it."""


class RegistryUnavailable(Exception):
    """The registry could not be asked, or answered other than the spec says."""


class UpstreamRegistry:
    def __init__(self, base_url: str, ca_file: Path | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream registry URL must be http(s)://host[:port]: {base_url}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._pool = urllib3.PoolManager(
            num_pools=1,
            maxsize=POOL_CONNECTIONS,
            ca_certs=str(ca_file) if ca_file else None,
            timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS),
            retries=False,
        )

    def repositories(self) -> Iterator[str]:
        """Every repository of the catalog (``GET /v2/_catalog``), page by page."""
        for page in self._pages(f"/v2/_catalog?n={PAGE_SIZE}"):
            yield from _strings(page, "repositories")

    def tags(self, repository: str) -> list[str]:
        """The repository's tags; none for a repository the registry does not know."""
        tags: list[str] = []
        for page in self._pages(f"/v2/{_path(repository)}/tags/list?n={PAGE_SIZE}"):
            tags += _strings(page, "tags")
        return tags

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Delete the tag; False when it was gone already (or the repository is)."""
        status, body, _ = self._request("DELETE", f"/v2/{_path(repository)}/manifests/{quote(tag)}")
        # The spec answers 202 Accepted; 200 OK is taken as the same.
        if status in (HTTPStatus.ACCEPTED, HTTPStatus.OK):
            return True
        if status == HTTPStatus.NOT_FOUND:
            return False
        raise RegistryUnavailable(f"DELETE of tag {tag} in {repository}: HTTP {status} {body!r}")

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete the manifest ``digest`` from the repository (``DELETE
        /v2/<name>/manifests/<digest>``, end-9), for the pruner; False when it was gone
        already. Its blobs stay until the registry's garbage collection."""
        status, body, _ = self._request("DELETE", f"/v2/{_path(repository)}/manifests/{digest}")
        if status in (HTTPStatus.ACCEPTED, HTTPStatus.OK):
            return True
        if status == HTTPStatus.NOT_FOUND:
            return False
        raise RegistryUnavailable(
            f"DELETE of manifest {digest} in {repository}: HTTP {status} {body[:200]!r}"
        )

    def _pages(self, first: str) -> Iterator[dict[str, Any]]:
        path: str | None = first
        for _ in range(MAX_PAGES):
            if path is None:
                return
            status, body, link = self._request("GET", path)
            if status == HTTPStatus.NOT_FOUND:  # NAME_UNKNOWN: a repository with nothing in it
                return
            if status != HTTPStatus.OK:
                raise RegistryUnavailable(f"GET {path}: HTTP {status} {body[:200]!r}")
            try:
                page = json.loads(body)
            except ValueError:
                raise RegistryUnavailable(f"GET {path}: not JSON") from None
            if not isinstance(page, dict):
                raise RegistryUnavailable(f"GET {path}: not a JSON object")
            yield page
            path = _next_page(link, self.origin)
        raise RegistryUnavailable(f"more than {MAX_PAGES} pages from {first}")

    def _request(self, method: str, path: str) -> tuple[int, bytes, str | None]:
        """Status, body (bounded) and ``Link`` header of one request."""
        try:
            response = self._pool.request(
                method, self.origin + path, preload_content=False, redirect=False
            )
        except (HTTPError, OSError) as err:
            raise RegistryUnavailable(f"{method} {path}: {type(err).__name__}") from None
        try:
            body = response.read(MAX_ANSWER_BYTES + 1, decode_content=True)
            if len(body) > MAX_ANSWER_BYTES:
                raise RegistryUnavailable(f"{method} {path}: over {MAX_ANSWER_BYTES} bytes")
            return response.status, body, response.headers.get("Link")
        except (HTTPError, OSError) as err:
            raise RegistryUnavailable(f"{method} {path}: {type(err).__name__}") from None
        finally:
            response.release_conn()


def _path(repository: str) -> str:
    """The repository as a URL path: its '/' kept, anything else a URL needs escaped."""
    return quote(repository, safe="/")


def _strings(page: dict[str, Any], key: str) -> list[str]:
    """A page's list of names; ``null`` (distribution's answer for none) is none."""
    values = page.get(key)
    if values is None:
        return []
    if not isinstance(values, list):
        raise RegistryUnavailable(f"{key} is not a list")
    return [value for value in values if isinstance(value, str)]


def _next_page(link: str | None, origin: str) -> str | None:
    """The path of the next page a ``Link`` header names, None at the last page; an
    absolute URL must be the registry's own (its path is kept, never another host)."""
    if not link:
        return None
    match = _NEXT.search(link)
    if match is None:
        return None
    target = match.group(1)
    if target.startswith("/"):
        return target
    if target.startswith(origin + "/"):
        return target[len(origin) :]
    raise RegistryUnavailable(f"the next page is on another host: {target}")
