"""The size an Image object records, as ``alauda.io/Image`` ``storage`` measures it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quota.usage import Descriptor, image_size


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def recorded_image_size(image: Mapping[str, Any] | None) -> int | None:
    """Config plus distinct layers when the Image lists them, else ``dockerImageMetadata.size``;
    None when the Image records no usable size (then no size limit can be checked)."""
    if not isinstance(image, Mapping):
        return None
    layers_raw = image.get("dockerImageLayers")
    if isinstance(layers_raw, list) and layers_raw:
        layers: list[Descriptor] = []
        for layer in layers_raw:
            if not isinstance(layer, Mapping):
                return None
            name, size = layer.get("name"), _int(layer.get("size"))
            if not isinstance(name, str) or size is None:
                return None
            layers.append(Descriptor(name, size))
        config_raw = image.get("dockerImageConfig")
        config = None
        if isinstance(config_raw, Mapping):
            digest, size = config_raw.get("digest"), _int(config_raw.get("size"))
            if isinstance(digest, str) and size is not None:
                config = Descriptor(digest, size)
        return image_size(config, layers)
    metadata = image.get("dockerImageMetadata")
    if isinstance(metadata, Mapping):
        return _int(metadata.get("size"))
    return None
