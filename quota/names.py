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

TAG_GRAMMAR: Final = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
"""The OCI distribution spec's tag grammar, as the spec writes it (spec.md, Pulling
manifests); messages quote it."""
TAG = re.compile(f"^{TAG_GRAMMAR}$")
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
"""The OCI image-spec digest grammar (any algorithm); ``is_digest`` adds the registered
algorithms' encodings."""
SHA256_HEX: Final = re.compile(r"[a-f0-9]{64}")
"""sha256's encoding: 64 lowercase hex digits (image-spec descriptor.md, Registered algorithms)."""
SHA512_HEX: Final = re.compile(r"[a-f0-9]{128}")
"""sha512's encoding: 128 lowercase hex digits (image-spec descriptor.md, Registered algorithms)."""
REGISTERED_ENCODINGS: Final = {"sha256": SHA256_HEX, "sha512": SHA512_HEX}
"""The image-spec's registered algorithms and their encodings; other algorithms keep the
general grammar (the registry's go-digest then refuses them as unsupported)."""


def is_digest(value: str) -> bool:
    """The image-spec digest grammar, and a registered algorithm's exact encoding: the one
    rule both doors apply to every digest a push names."""
    if not DIGEST.fullmatch(value):
        return False
    algorithm, encoded = value.split(":", 1)
    encoding = REGISTERED_ENCODINGS.get(algorithm)
    return encoding is None or encoding.fullmatch(encoded) is not None


def is_tag(value: str) -> bool:
    return TAG.fullmatch(value) is not None


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
