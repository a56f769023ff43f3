"""Construction-argument checks shared by the image-classification spaces."""

from __future__ import annotations

from collections.abc import Sequence

from nas.errors import ConfigError


def checked_resolutions(
    *,
    num_classes: int,
    in_channels: int,
    resolutions: Sequence[int] | None,
    image_size: int | None,
) -> tuple[int, list[int]]:
    """Validate class/channel counts; return (image_size, sorted distinct resolutions).

    The image size defaults to the largest resolution (224 when neither is given), and the
    resolutions default to the image size alone.
    """
    if num_classes < 1 or in_channels < 1:
        raise ConfigError(
            f"expected num_classes, in_channels >= 1, got {num_classes}, {in_channels}"
        )
    if image_size is None:
        image_size = max(resolutions) if resolutions else 224
    res = sorted({int(r) for r in (resolutions or [image_size])})
    if res[0] < 8:
        raise ConfigError(f"resolutions: expected sides >= 8 pixels, got {res}")
    return image_size, res
