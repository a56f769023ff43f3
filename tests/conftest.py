"""Shared fixtures. Tests run on one thread so several test processes fit on a 2-core machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

TEST_DEVICE = os.environ.get("NAS_TEST_DEVICE", "cpu")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dataset caches go to a temporary folder, never the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs folder, also exported as NAS_RUNS_DIR for CLI tests."""
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("NAS_RUNS_DIR", str(root))
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
