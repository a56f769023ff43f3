"""Run by `torchrun` in test_torchrun.py (two ranks, gloo, the toy space): `train_run` as the
CLI calls it, observed from inside every rank.

1. A run whose dataset is missing on rank 1 only: both ranks must raise (no rank left waiting).
2. A run of 6 steps: every rank records a digest of its parameters after every step.

Each rank writes `rank<N>.json` to the folder given as the first argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as tdist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import toy_config  # noqa: E402
from train_toy import register  # noqa: E402

import nas.train.once_for_all as once_for_all  # noqa: E402
from nas.artifacts import RunDir  # noqa: E402
from nas.errors import DatasetError, NasError  # noqa: E402
from nas.train.distributed import DistContext  # noqa: E402
from nas.train.supernet_run import train_run  # noqa: E402


def digest(net: torch.nn.Module) -> str:
    sha = hashlib.sha256()
    for name, param in net.named_parameters():
        sha.update(name.encode())
        sha.update(param.detach().cpu().numpy().tobytes())
    return sha.hexdigest()


def failing_on_rank1(root: Path, rank: int) -> str:
    """The error this rank raises when rank 1 cannot load the dataset."""
    real = once_for_all.load_dataset

    def load(*args, **kwargs):
        if rank == 1:
            raise DatasetError("dataset 'synthetic': expected it on this machine, got nothing")
        return real(*args, **kwargs)

    once_for_all.load_dataset = load
    try:
        train_run(toy_config(max_steps=2), RunDir(root, "bad"))
    except NasError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        once_for_all.load_dataset = real
    return "trained"


def digests_per_step(root: Path) -> tuple[list[str], dict]:
    """This rank's parameter digest after each step, and the run's summary."""
    seen: list[str] = []
    original = once_for_all.OnceForAllTrainer.train_step

    def recorded(self, batch, *, step):
        output = original(self, batch, step=step)
        seen.append(digest(self.net))
        return output

    once_for_all.OnceForAllTrainer.train_step = recorded
    cfg = toy_config(max_steps=6, checkpoint_every=3, batch_size=16, log_every=2)
    summary = train_run(cfg, RunDir(root, "ddp"))
    if DistContext.from_env().is_main:
        from nas.supernet.weights import load_trained_supernet

        seen.append(digest(load_trained_supernet(RunDir(root, "ddp"))))  # what rank 0 wrote
    return seen, summary.as_dict()


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    register()
    rank = int(os.environ["RANK"])
    # one process group for both runs (the CLI joins once per process; so does this driver)
    tdist.init_process_group("gloo")
    failed = failing_on_rank1(out, rank)
    digests, summary = digests_per_step(out)
    tdist.destroy_process_group()
    (out / f"rank{rank}.json").write_text(
        json.dumps({"failed": failed, "digests": digests, "summary": summary}))


if __name__ == "__main__":
    main()
