from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.data import BatchLoader, augment_batch, load_dataset, split_indices
from nas.errors import ConfigError, DatasetError


def _ids(split_images: torch.Tensor) -> set[bytes]:
    return {img.numpy().tobytes() for img in split_images}


def test_split_indices_are_disjoint_complete_and_deterministic() -> None:
    a = split_indices(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    b = split_indices(1000, seed=3, val_fraction=0.1, test_fraction=0.2)
    c = split_indices(1000, seed=4, val_fraction=0.1, test_fraction=0.2)
    for x, y in zip(a, b, strict=False):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])
    train, val, test = a
    assert (len(train), len(val), len(test)) == (700, 100, 200)
    assert len(set(train) | set(val) | set(test)) == 1000


@pytest.mark.parametrize("fractions", [(0.0, 0.1), (0.5, 0.5), (1.2, 0.0)])
def test_split_fractions_are_checked(fractions: tuple[float, float]) -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        split_indices(10, seed=0, val_fraction=fractions[0], test_fraction=fractions[1])


def test_digits_is_real_and_split_by_seed() -> None:
    splits = load_dataset("digits", seed=0)
    assert splits.num_classes == 10 and splits.channels == 1 and splits.image_size == 32
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    assert not splits.hflip  # a flipped digit is another symbol
    again = load_dataset("digits", seed=0, image_size=8)
    other = load_dataset("digits", seed=1, image_size=8)
    assert torch.equal(again.val.labels, load_dataset("digits", seed=0, image_size=8).val.labels)
    assert not torch.equal(again.val.images, other.val.images)
    # validation images are never in the training split
    assert not (_ids(again.val.images) & _ids(again.train.images)) or len(again.val) == 0


def test_synthetic_is_deterministic_and_sized() -> None:
    a = load_dataset("synthetic", image_size=12, num_classes=4, synthetic_size=40, seed=0)
    b = load_dataset("synthetic", image_size=12, num_classes=4, synthetic_size=40, seed=0)
    assert a.train.images.shape[1:] == (3, 12, 12)
    assert torch.equal(a.train.images, b.train.images)
    assert set(a.train.labels.tolist()) <= set(range(4))


def _write_cifar(root: Path, n_per_batch: int = 6) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n_per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": []}))
    return folder


def test_cifar10_reads_python_batches(tmp_path: Path) -> None:
    folder = _write_cifar(tmp_path)
    for data_dir in (tmp_path, folder):
        splits = load_dataset("cifar10", data_dir=data_dir, seed=0)
        assert len(splits.train) + len(splits.val) == 30
        assert len(splits.test) == 6  # the official test batch is kept as test
        assert splits.train.images.shape[1:] == (3, 32, 32)
    first = pickle.loads((folder / "test_batch").read_bytes())
    np.testing.assert_array_equal(splits.test.images[0].numpy().reshape(-1), first[b"data"][0])


def test_cifar_refuses_code_in_pickles(tmp_path: Path) -> None:
    folder = _write_cifar(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Path("x"), b"labels": []}))
    with pytest.raises(DatasetError, match="data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_missing_folder_names_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("cifar10")


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (20 + i, 18), colour).save(tmp_path / label / f"{i}.png")
    splits = load_dataset(
        "imagefolder", data_dir=tmp_path, image_size=16, seed=0, val_fraction=0.2
    )
    assert splits.num_classes == 2 and splits.image_size == 16
    everything = torch.cat([splits.train.images, splits.val.images, splits.test.images])
    labels = torch.cat([splits.train.labels, splits.val.labels, splits.test.labels])
    # class 0 (cat, first alphabetically) is red, class 1 blue
    assert (everything[labels == 0][:, 0] > 200).all() and (
        everything[labels == 1][:, 2] > 200
    ).all()


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("imagefolder", data_dir=tmp_path / "missing")
    (tmp_path / "only").mkdir()
    with pytest.raises(DatasetError, match="at least 2 class folders"):
        load_dataset("imagefolder", data_dir=tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="x.png"):
        load_dataset("imagefolder", data_dir=tmp_path)


def test_unknown_dataset_lists_valid_names() -> None:
    from nas.errors import NasError

    with pytest.raises(NasError, match="digits"):
        load_dataset("digitz")


def test_loader_order_is_a_function_of_seed_and_epoch() -> None:
    splits = load_dataset("synthetic", image_size=8, synthetic_size=50, seed=0)
    make = lambda seed: BatchLoader.for_splits(  # noqa: E731
        splits, "train", batch_size=8, device="cpu", seed=seed, train=True
    )
    first = [y for _, y in make(0).epoch(2)]
    again = [y for _, y in make(0).epoch(2)]
    resumed = [y for _, y in make(0).epoch(2, start_batch=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=False))
    assert all(torch.equal(a, b) for a, b in zip(first[3:], resumed, strict=False))
    assert not torch.equal(torch.cat(first), torch.cat([y for _, y in make(0).epoch(3)]))
    assert len(first) == len(splits.train) // 8  # drop_last for training


def test_eval_loader_covers_split_once_normalised() -> None:
    splits = load_dataset("synthetic", image_size=8, synthetic_size=50, seed=0)
    loader = BatchLoader.for_splits(splits, "val", batch_size=4, device="cpu")
    labels = torch.cat([y for _, y in loader.epoch(0)])
    assert torch.equal(labels, splits.val.labels)
    train = BatchLoader.for_splits(splits, "train", batch_size=len(splits.train), device="cpu")
    images = next(iter(train))[0]
    assert abs(images.mean().item()) < 0.05 and abs(images.std().item() - 1) < 0.05


def test_augment_crops_within_padding_and_flips() -> None:
    image = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).repeat(64, 1, 1, 1)
    out = augment_batch(image, torch.Generator().manual_seed(0), hflip=True)
    assert out.shape == image.shape
    # every output pixel is either padding (0) or a pixel of the input
    assert set(out.unique().tolist()) <= set(range(64))
    assert not torch.equal(out, image)
    still = augment_batch(image, torch.Generator().manual_seed(0), hflip=False)
    # without flips, rows stay increasing left to right where not padded
    row = still[0, 0, 4]
    nonzero = row[row > 0]
    assert torch.all(nonzero[1:] > nonzero[:-1])


def _colour_folder(root: Path) -> None:
    from PIL import Image

    for label, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 12), colour).save(root / label / f"{i}.png")


def test_imagefolder_cache_is_reused_and_follows_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from nas.data import cache

    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    _colour_folder(tmp_path / "data")
    first = load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    entries = list((tmp_path / "cache" / "imagefolder").glob("*.npz"))
    assert len(entries) == 1
    decoded = []
    monkeypatch.setattr(
        "nas.data.loaders._decode_images",
        lambda files, size: decoded.append(len(files)) or pytest.fail("decoded again"),
    )
    again = load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    assert torch.equal(first.train.images, again.train.images)
    assert decoded == []
    monkeypatch.undo()
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    # an edited image must be decoded again, not served stale from the cache
    Image.new("RGB", (12, 12), (0, 255, 0)).save(tmp_path / "data" / "cat" / "0.png")
    edited = load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    everything = torch.cat([edited.train.images, edited.val.images, edited.test.images])
    assert (everything[:, 1] > 200).any()
    assert len(list((tmp_path / "cache" / "imagefolder").glob("*.npz"))) == 2
    assert cache.cache_root() == tmp_path / "cache"


def test_imagefolder_cache_off_and_corrupt_entries_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _colour_folder(tmp_path / "data")
    monkeypatch.setenv("NAS_CACHE_DIR", "off")
    load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    assert not (tmp_path / "off").exists()
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    reference = load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    for entry in (tmp_path / "cache" / "imagefolder").glob("*.npz"):
        entry.write_bytes(b"garbage")
    again = load_dataset("imagefolder", data_dir=tmp_path / "data", image_size=8)
    assert torch.equal(reference.train.images, again.train.images)
