"""A decoded copy of each image folder, so that only the first load pays for decoding.

Decoding CIFAR-10's 60,000 JPEGs takes about 40 s on one core, and every stage (training,
evaluation, search, export, ranking) loads the run's dataset again. The decoded uint8 arrays
are kept in one `.npz` per (folder, file list, image size), read back with
`allow_pickle=False`. The key covers every file's relative path, size and modification time,
so an edited, added or removed image gives a new entry instead of stale data.

Where: `$NAS_CACHE_DIR`, else `$XDG_CACHE_HOME/nas`, else `~/.cache/nas`;
`NAS_CACHE_DIR=off` turns the cache off. A cache that cannot be read or written is skipped
with a log line: it only ever saves time, never changes what is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas.artifacts import atomic_save_with

logger = logging.getLogger(__name__)

# bump when the decoding (colour conversion, resampling) changes
FORMAT = 1
_OFF = ("off", "0", "none", "false")


def cache_root() -> Path | None:
    """The cache folder, or None when the user turned caching off."""
    configured = os.environ.get("NAS_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in _OFF else Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "nas"


def folder_key(root: Path, files: Sequence[Path], labels: Sequence[int], size: int) -> str:
    """A digest of what decoding `files` at `size` depends on (paths, sizes, mtimes, labels)."""
    digest = hashlib.sha256(f"nas-imagefolder/{FORMAT}/{size}\n".encode())
    for file, label in zip(files, labels, strict=True):
        stat = file.stat()
        name = file.relative_to(root).as_posix()
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\t{label}\n".encode())
    return digest.hexdigest()[:32]


def _entry(key: str) -> Path | None:
    root = cache_root()
    return None if root is None else root / "imagefolder" / f"{key}.npz"


def load(key: str, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached `(images, labels)` for `key`, or None when absent or unusable."""
    path = _entry(key)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable dataset cache %s (%s)", path, exc)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (count,) \
            or len(images) != count:
        logger.warning("ignoring dataset cache %s: unexpected shapes", path)
        return None
    return images, labels.astype(np.int64, copy=False)


def store(key: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Keep a decoded folder for the next load (best effort)."""
    path = _entry(key)
    if path is None:
        return
    try:
        atomic_save_with(path, lambda tmp: _savez(tmp, images=images, labels=labels))
    except OSError as exc:
        logger.warning("dataset cache not written to %s (%s)", path, exc)


def _savez(tmp: str, *, images: np.ndarray, labels: np.ndarray) -> None:
    # np.savez appends ".npz" to names without it; a file handle keeps the temp name exact
    with open(tmp, "wb") as handle:
        np.savez(handle, images=images, labels=labels)
