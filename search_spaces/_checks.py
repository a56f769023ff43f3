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


def check_exact_keys(arch: object, keys: Sequence[str]) -> None:
    """Raise `InvalidArchError` unless `arch` is a mapping with exactly `keys`."""
    from collections.abc import Mapping

    from nas.errors import InvalidArchError

    if not isinstance(arch, Mapping):
        raise InvalidArchError(f"expected a subnet config object, got {type(arch).__name__}")
    missing = [k for k in keys if k not in arch]
    extra = sorted(set(arch) - set(keys))
    if missing or extra:
        raise InvalidArchError(
            f"{(missing or extra)[0]}: expected exactly the keys {list(keys)}, "
            f"got missing {missing} and unknown {extra}"
        )
