"""Data-parallel training with 2 CPU processes (gloo), as `torchrun` would start them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from nas.train.distributed import DistContext


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    # spawned workers see every test folder on sys.path; import by package path so the
    # right conftest is found
    from train_toy import register

    import nas.train.supernet_run as run_module
    from nas.artifacts import RunDir
    from nas.supernet.weights import load_trained_supernet
    from nas.train.supernet_run import train_run
    from tests.nas.train.conftest import toy_config

    register()
    captured = {}
    original = run_module._train

    def capture(*args, **kwargs):  # keep this rank's own network
        captured["net"], result = original(*args, **kwargs)
        return captured["net"], result

    run_module._train = capture
    run = RunDir(Path(root), "ddp")
    dist = DistContext.from_env()
    summary = train_run(toy_config(max_steps=4, checkpoint_every=2, batch_size=16), run, dist=dist)
    if rank == 0:
        assert summary.steps == 4 and set(summary.val) == {"largest", "smallest"}
        net = load_trained_supernet(run)
        torch.save(net.state_dict(), Path(root) / "saved.pt")
    import torch.distributed as tdist

    # parameters only: DDP keeps them identical; BN running statistics are per-rank until
    # rank 0's are broadcast at the next forward
    params = {name: p.detach().clone() for name, p in captured["net"].named_parameters()}
    torch.save(params, Path(root) / f"rank{rank}.pt")
    assert not tdist.is_initialized()  # train_run joined the group and left it


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    saved = torch.load(tmp_path / "saved.pt", weights_only=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0].keys() and ranks[0].keys() <= saved.keys()
    for key, value in ranks[0].items():
        assert torch.equal(ranks[1][key], value), key  # replicas stayed in sync
        assert torch.equal(saved[key], value), key  # rank 0 wrote its weights
    from nas.artifacts import RunDir, read_jsonl

    metrics = list(read_jsonl(RunDir(tmp_path, "ddp").sub("supernet", "metrics.jsonl")))
    assert metrics and all(record["world_size"] == 2 for record in metrics)


def test_single_process_context_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist = DistContext.from_env()
    assert not dist.enabled and dist.is_main
    net = torch.nn.Linear(2, 2)
    assert dist.wrap(net, torch.device("cpu")) is net
    images, labels = torch.zeros(4, 3), torch.zeros(4)
    assert dist.shard(images, labels)[0] is images
    two = DistContext(rank=1, world_size=2)
    assert two.shard(torch.arange(6), torch.arange(6))[0].tolist() == [1, 3, 5]
