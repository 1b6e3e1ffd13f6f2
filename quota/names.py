"""The grammars of the names a push carries, in one place so that every door judges the
same names by the same rules. All are used with fullmatch: ``$`` alone also matches before
a final newline."""

from __future__ import annotations

import re
from typing import Final

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A namespace name (Kubernetes DNS-1123 label)."""
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""An ImageStream name (Kubernetes DNS-1123 subdomain), up to MAX_NAME_LENGTH."""
MAX_NAME_LENGTH: Final = 253
"""Kubernetes' limit on a DNS-1123 subdomain, so on an ImageStream's name."""
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""The OCI distribution spec's tag grammar."""
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
"""The OCI image-spec digest grammar (any algorithm)."""
