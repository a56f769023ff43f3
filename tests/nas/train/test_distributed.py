"""Data-parallel training: two CPU processes (gloo) started by the `torchrun` command itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from nas.artifacts import RunDir, read_jsonl
from nas.errors import ConfigError
from nas.testing.torchrun import torchrun_command, torchrun_path, worker_env
from nas.train.distributed import DistContext

DRIVER = Path(__file__).resolve().parent / "torchrun_driver.py"


@pytest.mark.slow
@pytest.mark.skipif(torchrun_path() is None, reason="torchrun is not installed")
def test_torchrun_ranks_stay_in_step_and_fail_together(tmp_path: Path) -> None:
    done = subprocess.run(torchrun_command(str(DRIVER), str(tmp_path), log_dir=tmp_path / "logs"),
                          env=worker_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]

    # rank 1 could not load its data: it raised its own error, rank 0 one naming rank 1's
    assert ranks[1]["failed"].startswith("DatasetError: dataset 'synthetic'")
    assert ranks[0]["failed"].startswith("PeerFailedError: rank 1 of 2 failed preparing the "
                                         "run: dataset 'synthetic'")
    assert all(p.is_dir() for p in (tmp_path / "bad").rglob("*"))  # no file written

    # identical parameters on both ranks after every step; rank 0 wrote the last ones
    zero, one = ranks[0]["digests"], ranks[1]["digests"]
    assert len(one) == 6 and zero[:6] == one and len(set(one)) == 6
    assert zero[6] == zero[5]
    assert ranks[0]["summary"]["steps"] == 6
    assert set(ranks[0]["summary"]["val"]) == {"largest", "smallest"}
    metrics = list(read_jsonl(RunDir(tmp_path, "ddp").sub("supernet", "metrics.jsonl")))
    assert metrics and all(record["world_size"] == 2 for record in metrics)


def test_single_process_context_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = DistContext.from_env()
    assert not dist.enabled and dist.is_main
    net = torch.nn.Linear(2, 2)
    net(torch.ones(1, 2)).sum().backward()
    grad = net.weight.grad.clone()
    dist.replicate(net)
    dist.average_gradients(net)
    assert torch.equal(net.weight.grad, grad)
    images, labels = torch.zeros(4, 3), torch.zeros(4)
    assert dist.shard(images, labels)[0] is images
    with dist.agreed("doing nothing"):
        pass
    assert dist.gather_rng() is None and dist.rank0_flag(True)
    two = DistContext(rank=1, world_size=2)
    assert two.shard(torch.arange(6), torch.arange(6))[0].tolist() == [1, 3, 5]


def test_each_rank_trains_an_equal_slice() -> None:
    DistContext(rank=0, world_size=4).check_batch(64)
    with pytest.raises(ConfigError, match=r"multiple of the number of processes \(4\).*got "
                       r"30; pass --batch-size 28 or 32"):
        DistContext(rank=0, world_size=4).check_batch(30)
    with pytest.raises(ConfigError, match="pass --batch-size 2$"):
        DistContext(rank=1, world_size=2).check_batch(1)
