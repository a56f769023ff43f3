"""Few-shot NAS with gradient matching (Hu et al., "Generalizing few-shot NAS with gradient
matching", ICLR 2022): where to split a warmed-up supernet, and the split itself.

For each decision the space offers (`SearchSpace.few_shot_choices`), on each of a few
batches: one random subnet is drawn, then trained (forward + backward, no step) once per
candidate of the decision with everything else equal. The candidates' gradients on the weights
that every one of them uses (the shared weights; the decision's own op weights get a gradient
from one candidate only) are compared by cosine distance, averaged over the batches. The
candidates are partitioned into K groups with the least distance inside the groups; the
decision whose best partition cuts the most distance (the candidates that disagree most on
the shared weights) is split. As GM-NAS, the sub-supernets inherit the weights, the optimizer
state and the learning-rate schedule.

The measurement runs on a copy of the supernet under a forked torch RNG, so it moves no batch
norm statistic and draws nothing from the generators training uses: a resumed run measures
and splits exactly as a straight one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.supernet.base import Supernet
from nas.supernet.evaluate import resize_to
from nas.supernet.few_shot import FewShotSupernet, Split, partitions
from search_spaces.base import Choice

DEFAULT_BATCHES = 10


@dataclass(frozen=True)
class SplitDecision:
    """The chosen split with what the choice was made from (recorded in `few_shot.json`)."""

    split: Split
    scores: dict[str, float]  # decision name -> distance cut by its best partition
    distances: dict[str, list[list[float]]]  # decision name -> mean cosine distances
    batches: int
    seconds: float

    def record(self, step: int) -> dict[str, Any]:
        return {"step": step, "split": self.split.to_dict(), "choice": self.split.choice.name,
                "scores": self.scores, "distances": self.distances, "batches": self.batches,
                "seconds": round(self.seconds, 3)}


def candidate_gradients(
    net: Supernet, arch: dict[str, Any], choice: Choice, images: torch.Tensor,
    labels: torch.Tensor,
) -> list[dict[str, torch.Tensor]]:
    """Per candidate of `choice`: the gradients of `net`'s weights with `arch` taking it."""
    grads = []
    for value in choice.candidates:
        candidate = net.space.normalize(choice.with_value(arch, value))
        net.set_active(candidate)
        net.zero_grad(set_to_none=True)
        logits = net(resize_to(images, net.input_resolution(candidate)))
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()  # type: ignore[no-untyped-call]
        grads.append({name: p.grad.detach().clone() for name, p in net.named_parameters()
                      if p.grad is not None})
    return grads


def cosine_distances(grads: Sequence[dict[str, torch.Tensor]]) -> np.ndarray:
    """1 - cosine similarity between the candidates' gradients on the weights all of them
    have a gradient for."""
    shared = sorted(set.intersection(*(set(g) for g in grads)))
    flat = torch.stack([torch.cat([g[name].flatten().double() for name in shared])
                        for g in grads]) if shared else torch.zeros(len(grads), 1)
    unit = flat / (flat.norm(dim=1, keepdim=True) + 1e-12)
    distances: np.ndarray = (1.0 - unit @ unit.T).numpy()
    return distances


def best_partition(
    distances: np.ndarray, candidates: Sequence[Any], k: int
) -> tuple[tuple[tuple[Any, ...], ...], float]:
    """The partition into `k` groups with the least distance inside groups, and the distance
    it cuts (the decision's score: larger means its candidates disagree more)."""
    index = {value: i for i, value in enumerate(candidates)}
    upper = np.triu(distances, 1)
    total = float(upper.sum())
    best: tuple[tuple[Any, ...], ...] = ()
    best_within = float("inf")
    for groups in partitions(list(candidates), k):
        within = sum(float(upper[index[a], index[b]]) + float(upper[index[b], index[a]])
                     for group in groups for i, a in enumerate(group) for b in group[i + 1:])
        if within < best_within - 1e-12:
            best, best_within = groups, within
    return best, total - best_within


def choose_split(
    net: Supernet, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], k: int, *, seed: int,
    choices: Sequence[Choice] | None = None,
) -> SplitDecision:
    """The decision of `net.space` to split into `k` groups, measured on `batches`.

    `choices`: the decisions compared (default: all of `few_shot_choices()`).

    Raises:
        ConfigError: the space offers no decision with at least `k` candidates.
    """
    from nas.errors import ConfigError

    offered = net.space.few_shot_choices() if choices is None else choices
    choices = [c for c in offered if len(c.candidates) >= k]
    if not choices:
        raise ConfigError(f"--few-shot {k}: space '{net.space.name}' has no decision with {k} "
                          "or more candidates to split on (few-shot runs: nb201, ofa-mbv3)")
    started = time.perf_counter()
    probe = copy.deepcopy(net).train()
    sums = {c.name: np.zeros((len(c.candidates),) * 2) for c in choices}
    cuda = [d.index or 0 for d in {p.device for p in net.parameters()} if d.type == "cuda"]
    with torch.random.fork_rng(devices=cuda):
        for draw, (images, labels) in enumerate(batches):
            arch = net.space.sample(np.random.default_rng([seed, 0xF5, draw]))
            for choice in choices:
                grads = candidate_gradients(probe, arch, choice, images, labels)
                sums[choice.name] += cosine_distances(grads)
    distances, scores, best = {}, {}, None
    for choice in choices:
        mean = sums[choice.name] / max(1, len(batches))
        groups, score = best_partition(mean, choice.candidates, k)
        distances[choice.name] = mean.round(6).tolist()
        scores[choice.name] = round(score, 6)
        if best is None or score > best[1]:
            best = (Split(choice, groups), score)
    assert best is not None
    return SplitDecision(best[0], scores, distances, len(batches),
                         time.perf_counter() - started)


def inherit_optimizer(
    old: torch.optim.Optimizer, new: torch.optim.Optimizer, base: Supernet,
    split: FewShotSupernet,
) -> None:
    """Give every sub-supernet's weights the optimizer state of the weight it copies (SGD
    momentum), and `new`'s groups the learning rate `old`'s have now."""
    names = {id(p): name for name, p in base.named_parameters()}
    by_name = {names[id(p)]: state for p, state in old.state.items() if id(p) in names}
    for name, param in split.named_parameters():
        source = by_name.get(name.split(".", 2)[2])  # "subnets.K.<base name>"
        if source is not None:
            new.state[param] = {key: value.clone() if torch.is_tensor(value) else value
                                for key, value in source.items()}
    for group_new, group_old in zip(new.param_groups, old.param_groups, strict=True):
        group_new["lr"] = group_old["lr"]


__all__ = [
    "DEFAULT_BATCHES", "SplitDecision", "best_partition", "candidate_gradients", "choose_split",
    "cosine_distances", "inherit_optimizer",
]
