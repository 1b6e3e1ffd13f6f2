"""The names this service reads and writes, in one place so that every door and every
controller judges the same names by the same rules: Kubernetes object names and their
limits, the OCI tag and digest grammars, and the API groups and resources of the Image API
and the registry operator. The grammars are used with fullmatch: ``$`` alone also matches
before a final newline."""

from __future__ import annotations

import re
from typing import Final

# --- Kubernetes object names (k8s.io/apimachinery/pkg/util/validation) --------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
"""A namespace name (Kubernetes DNS-1123 label)."""
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
"""An object name (Kubernetes DNS-1123 subdomain: ImageStreams, Secrets), up to
MAX_NAME_LENGTH."""
MAX_NAME_LENGTH: Final = 253
"""Kubernetes' limit on a DNS-1123 subdomain, so on an ImageStream's or a Secret's name."""
GENERATED_SUFFIX_LENGTH: Final = 5
"""Characters the API server appends to a ``generateName`` (k8s.io/apiserver
pkg/storage/names: ``randomLength``)."""
MAX_GENERATE_NAME_PREFIX: Final = 58
"""The longest ``generateName`` the API server keeps whole (``MaxGeneratedNameLength``,
63 - 5): a longer prefix is cut."""

# --- OCI names ----------------------------------------------------------------------------

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""The OCI distribution spec's tag grammar."""
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
"""The OCI image-spec digest grammar (any algorithm)."""

# --- API groups and resources (the contract: image.alauda.io/v1, standalone mode's CRDs) -

IMAGE_GROUP: Final = "image.alauda.io"
IMAGE_VERSION: Final = "v1"
IMAGE_API_VERSION: Final = f"{IMAGE_GROUP}/{IMAGE_VERSION}"
IMAGESTREAMS: Final = "imagestreams"
IMAGES: Final = "images"
OPERATOR_GROUP: Final = "imageregistry.operator.alauda.io"
"""The registry operator's group: ``configs`` (the registry's routes) and ``imagepruners``."""
OPERATOR_VERSION: Final = "v1"
CONFIGS: Final = "configs"
