"""What a DARTS-family search leaves behind: the found subnet and the search's summary.

Every search, whatever its space, writes

* `arch.json`: `{"format": "nas-search-arch/1", "arch": <the space's text form: NB201's
  "|op~0|+|op~0|op~1|+|...|", DARTS' "Genotype(...)">, "subnet": <canonical subnet config>,
  "arch_id", "space": <spec>, "method", "select"}`; the space's `normalize()` reads either
  form back, and `nas train-supernet --json` prints the same `arch`;
* `supernet/summary.json`: `arch.json`'s fields plus how far the search got, the supernet's
  validation accuracy, the options and the family's figures;

and the family adds its own files (DARTS: `genotype.json`, the DARTS repository's form that
`nas train --genotype` reads, and `genotype.png`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import torch

from nas.arch import arch_id
from nas.artifacts import RunDir, atomic_write_json
from nas.data import DatasetSplits
from nas.supernet.differentiable import DifferentiableSupernet
from nas.train.bilevel_config import BilevelConfig
from nas.train.bilevel_spaces import SearchFamily
from nas.train.search_latency import ExpectedLatency
from nas.train.trainer import LoopResult
from search_spaces import SearchSpace, parse_space_options

ARCH_FORMAT = "nas-search-arch/1"


class SearchState(Protocol):
    """What the summary reads of a search (a `SearchState`)."""

    config: BilevelConfig
    net: DifferentiableSupernet
    space: SearchSpace
    family: SearchFamily
    run: RunDir
    splits: DatasetSplits
    device: torch.device
    val_acc: float | None
    latency: ExpectedLatency | None
    target: float

    def evaluate(self) -> float: ...


def derive_arch(trainer: SearchState) -> dict[str, Any]:
    """The subnet by `config.select`: largest alphas, or DARTS-PT's perturbation."""
    config, net = trainer.config, trainer.net
    if config.select == "perturbation":
        from nas.train.darts_select import perturbation_arch

        arch = perturbation_arch(net, trainer.splits, device=trainer.device,
                                 batches=config.pt_batches, batch_size=config.eval_batch_size)
    else:
        arch = net.derive()
    return trainer.space.normalize(arch)


def arch_record(trainer: SearchState, subnet: dict[str, Any]) -> dict[str, Any]:
    """`arch.json`'s content for the found `subnet`."""
    config = trainer.config
    return {"format": ARCH_FORMAT, "arch": trainer.net.arch_string(subnet), "subnet": subnet,
            "arch_id": arch_id(subnet), "space": trainer.space.spec(), "method": config.method,
            "select": config.select}


def _network(trainer: SearchState) -> dict[str, Any]:
    """The search network's size options (as the space resolved them) and weight count."""
    kwargs = trainer.space.spec()["kwargs"]
    keys = [*trainer.family.space_options(trainer.config),
            *parse_space_options(trainer.config.space_options)]
    sized = {key: kwargs[key] for key in keys}
    return {**sized, "params": sum(p.numel() for p in trainer.net.weight_parameters())}


def search_summary(trainer: SearchState, result: LoopResult) -> dict[str, Any]:
    """Write `arch.json`, the family's files and `supernet/summary.json`; return the summary."""
    config, net, run = trainer.config, trainer.net, trainer.run
    subnet = derive_arch(trainer)
    record = arch_record(trainer, subnet)
    atomic_write_json(run.sub("arch.json"), record)
    summary: dict[str, Any] = {
        **record, "completed": result.completed, "epochs_done": result.epochs_done,
        "steps": result.steps,
        "val_acc": trainer.val_acc if trainer.val_acc is not None else trainer.evaluate(),
        "skip_share": net.op_share("skip_connect"),
        "supernet": _network(trainer),
        **trainer.family.write_artifacts(run, trainer.space, subnet),
    }
    if trainer.latency is not None:
        summary["target_latency_ms"] = trainer.target
        summary["arch_latency_ms"] = trainer.latency.of_weights(net.arch_weights(subnet))
    summary["config"] = dataclasses.asdict(config)
    atomic_write_json(run.sub("supernet", "summary.json"), summary)
    return summary


__all__ = ["ARCH_FORMAT", "arch_record", "derive_arch", "search_summary"]
