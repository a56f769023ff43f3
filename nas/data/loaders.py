"""The built-in datasets. Each loader returns a `RawDataset`; `load_dataset` splits and resizes."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data._registry import RawDataset, register_dataset
from nas.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@register_dataset("digits")
def load_digits(**_: Any) -> RawDataset:
    """scikit-learn's bundled handwritten digits: 1,797 real 8x8 grey images, 10 classes."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # pixel values are 0..16 counts; scale to the 0..255 range every other dataset uses
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(bunch.target.astype(np.int64)),
        num_classes=10,
        hflip=False,
        default_image_size=32,
    )


@register_dataset("synthetic")
def load_synthetic(
    *,
    image_size: int | None = None,
    num_classes: int | None = None,
    synthetic_size: int = 512,
    **_: Any,
) -> RawDataset:
    """Deterministic, learnable random images: one smooth template per class plus noise.

    The content never depends on the split seed, so tests and benchmarks see the same data.
    """
    size = image_size or 32
    classes = num_classes or 10
    rng = np.random.default_rng(1234)
    coarse = rng.uniform(0, 255, size=(classes, 3, 4, 4)).astype(np.float32)
    templates = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
    labels = np.arange(synthetic_size) % classes
    rng.shuffle(labels)
    noise = rng.normal(0, 40, size=(synthetic_size, 3, size, size)).astype(np.float32)
    images = np.clip(templates[labels] + noise, 0, 255).round().astype(np.uint8)
    return RawDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels.astype(np.int64)),
        num_classes=classes,
        hflip=True,
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches while refusing every global but numpy's array reconstruction.

    The CIFAR "python version" files are pickles; a general unpickler would run arbitrary code
    from a user-provided file, so only the handful of callables numpy arrays need are allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = _NumpyOnlyUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as exc:
        raise DatasetError(
            f"{path}: not a CIFAR python batch (expected a pickled dict with b'data' and "
            f"{label_key!r}; {type(exc).__name__}: {exc})"
        ) from None
    if len(data) != len(labels):
        raise DatasetError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def _find_cifar_folder(data_dir: Path | None, folder: str, marker: str, name: str) -> Path:
    layout = f"{folder}/ with {marker} (the 'python version' from the CIFAR site)"
    if data_dir is None:
        raise DatasetError(f"{name} needs --data-dir pointing at {layout}")
    for candidate in (data_dir, data_dir / folder):
        if (candidate / marker).is_file():
            return candidate
    raise DatasetError(f"{data_dir}: expected {layout}, but {marker} is not there")


def _load_cifar(
    data_dir: Path | None,
    *,
    folder: str,
    train_files: list[str],
    test_file: str,
    label_key: bytes,
    num_classes: int,
    name: str,
) -> RawDataset:
    root = _find_cifar_folder(data_dir, folder, train_files[0], name)
    missing = [f for f in [*train_files, test_file] if not (root / f).is_file()]
    if missing:
        raise DatasetError(f"{root}: expected {name} batch files, missing {', '.join(missing)}")
    parts = [_read_cifar_batch(root / f, label_key) for f in train_files]
    test_images, test_labels = _read_cifar_batch(root / test_file, label_key)
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DatasetError(f"{root}: labels must lie in 0..{num_classes - 1}")
    return RawDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        num_classes=num_classes,
        hflip=True,
        test_images=torch.from_numpy(test_images),
        test_labels=torch.from_numpy(test_labels),
    )


@register_dataset("cifar10")
def load_cifar10(*, data_dir: Path | None = None, **_: Any) -> RawDataset:
    """CIFAR-10 from `cifar-10-batches-py/` (data_batch_1..5, test_batch)."""
    return _load_cifar(
        data_dir,
        folder="cifar-10-batches-py",
        train_files=[f"data_batch_{i}" for i in range(1, 6)],
        test_file="test_batch",
        label_key=b"labels",
        num_classes=10,
        name="cifar10",
    )


@register_dataset("cifar100")
def load_cifar100(*, data_dir: Path | None = None, **_: Any) -> RawDataset:
    """CIFAR-100 (fine labels) from `cifar-100-python/` (train, test)."""
    return _load_cifar(
        data_dir,
        folder="cifar-100-python",
        train_files=["train"],
        test_file="test",
        label_key=b"fine_labels",
        num_classes=100,
        name="cifar100",
    )


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_image_folder(root: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for label, class_name in enumerate(classes):
        folder = root / class_name
        found = (
            sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if folder.is_dir()
            else []
        )
        files += found
        labels += [label] * len(found)
    return files, labels


def _decode_images(files: list[Path], size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    images = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                images[index] = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{file}: not a readable image ({exc})") from None
    return images


def _read_image_folder(root: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    import nas.data.cache as cache

    files, labels = _list_image_folder(root, classes)
    if not files:
        raise DatasetError(
            f"{root}: expected one sub-folder per class holding images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))}), found no images"
        )
    key = cache.folder_key(root, files, labels, size)
    cached = cache.load(key, len(files))
    if cached is not None:
        return cached
    images, label_array = _decode_images(files, size), np.asarray(labels, dtype=np.int64)
    cache.store(key, images, label_array)
    return images, label_array


@register_dataset("imagefolder")
def load_imagefolder(
    *, data_dir: Path | None = None, image_size: int | None = None, **_: Any
) -> RawDataset:
    """Images in `DIR/<class>/*.png|jpg...`, or `DIR/train/<class>/` with `DIR/test/<class>/`.

    Images are converted to RGB and resized to `image_size` (default 64) when read.
    """
    layout = "DIR/<class name>/<image files> (or DIR/train/<class>/ and DIR/test/<class>/)"
    if data_dir is None:
        raise DatasetError(f"imagefolder needs --data-dir with the layout {layout}")
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir} does not exist; expected {layout}")
    size = image_size or 64
    train_root = data_dir / "train" if (data_dir / "train").is_dir() else data_dir
    test_root = next((data_dir / n for n in ("test", "val") if (data_dir / n).is_dir()), None)
    if train_root == data_dir:
        test_root = None
    classes = [p.name for p in _class_folders(train_root)]
    if len(classes) < 2:
        raise DatasetError(
            f"{train_root}: expected at least 2 class folders, found {len(classes)}; "
                f"layout {layout}"
        )
    images, labels = _read_image_folder(train_root, classes, size)
    test_images = test_labels = None
    if test_root is not None:
        t_images, t_labels = _read_image_folder(test_root, classes, size)
        test_images, test_labels = torch.from_numpy(t_images), torch.from_numpy(t_labels)
    return RawDataset(
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        num_classes=len(classes),
        hflip=True,
        test_images=test_images,
        test_labels=test_labels,
    )
