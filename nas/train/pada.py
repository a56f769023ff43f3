"""PA&DA: path and data importance sampling (Lu et al., "PA&DA: Jointly sampling PAth and DAta
for consistent NAS", CVPR 2023), `--sampler pada`.

Weight-sharing ranks subnets badly partly because the shared weights' gradient is noisy: each
step trains one random path on one random batch. The variance of that gradient estimate is
smallest when paths and images are drawn with probabilities proportional to their gradient
norms, so PA&DA tracks those norms during an epoch and samples the next epoch by them:

- **paths**: each choice (key, value) of the arch gets the mean norm of the whole supernet
  gradient over the steps of the epoch whose path used it; the next epoch draws each key's
  value with probability proportional to it. The reference measures only the convolutions' own
  weights, so parameter-free ops (skip, pool, none) keep just the uniform share; here every
  choice is judged by the path it was on (the quantity the paper's derivation asks for).
  Spaces whose archs are not flat key -> value maps (once-for-all's per-block lists) keep
  uniform paths; their data is still importance-sampled.
- **data**: each training image gets the norm of the loss gradient with respect to the logits,
  ||softmax(z) - onehot(y)|| (the per-sample gradient-norm bound of Katharopoulos & Fleuret,
  2018, which the reference uses), from the step's first subnet; the next epoch is drawn with
  replacement from those weights. Images not seen in the epoch get the mean.

Both distributions are mixed with the uniform one, the importance share growing with training
as in the reference: after epoch e (counted from 0) of E it is (e + 1) / E. Losses are not
reweighted (as the reference). All draws come from (seed, epoch) or the step's generator, and
the running sums live in the checkpoint, so a resumed run draws what a straight run draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from nas.arch import Arch
from nas.data import BatchLoader
from nas.errors import ConfigError
from nas.train.samplers import ALL, SubnetSampler, UniformSampler, register_sampler
from search_spaces.base import SearchSpace

_SCALARS = (str, int, float, bool, np.integer, np.floating)
_POOL = 256  # draws that reveal each key's values


def mixed(importance: np.ndarray, mix: float) -> np.ndarray:
    """`mix` of the importance distribution plus `1 - mix` of the uniform one."""
    total = float(importance.sum())
    uniform = np.full(importance.size, 1.0 / importance.size)
    if not np.isfinite(total) or total <= 0:
        return uniform
    return np.asarray(mix * importance / total + (1.0 - mix) * uniform)


class PathImportance:
    """Per key, a distribution over its values fed by the gradient norms of the paths drawn.

    Args:
        choices: each key's values, in a fixed order.
    """

    def __init__(self, choices: Mapping[str, Sequence[Any]]) -> None:
        self.choices = {key: tuple(values) for key, values in choices.items()}
        self.probs = {k: np.full(len(v), 1.0 / len(v)) for k, v in self.choices.items()}
        self.importance = {k: np.full(len(v), np.nan) for k, v in self.choices.items()}
        self._sums = {k: np.zeros(len(v)) for k, v in self.choices.items()}
        self._counts = {k: np.zeros(len(v), dtype=np.int64) for k, v in self.choices.items()}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {key: values[int(rng.choice(len(values), p=self.probs[key]))]
                for key, values in self.choices.items()}

    def observe(self, arch: Arch, norm: float) -> None:
        """One step trained `arch` and the supernet's gradient had norm `norm`."""
        for key, values in self.choices.items():
            if arch.get(key) in values:
                index = values.index(arch[key])
                self._sums[key][index] += norm
                self._counts[key][index] += 1

    def update(self, mix: float) -> None:
        """End of an epoch: the epoch's means become the importances; the sums restart."""
        for key in self.choices:
            seen = self._counts[key] > 0
            self.importance[key][seen] = self._sums[key][seen] / self._counts[key][seen]
            known = self.importance[key][np.isfinite(self.importance[key])]
            filled = np.where(np.isfinite(self.importance[key]), self.importance[key],
                              known.mean() if known.size else 1.0)
            self.probs[key] = mixed(filled, mix)
            self._sums[key][:] = 0.0
            self._counts[key][:] = 0

    def state_dict(self) -> dict[str, Any]:
        return {name: {key: table[key].tolist() for key in self.choices}
                for name, table in (("probs", self.probs), ("importance", self.importance),
                                    ("sums", self._sums), ("counts", self._counts))}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, table in (("probs", self.probs), ("importance", self.importance),
                            ("sums", self._sums), ("counts", self._counts)):
            for key in self.choices:
                table[key] = np.asarray(state[name][key], dtype=table[key].dtype)


class DataImportance:
    """Per training image, the mean per-sample gradient norm seen this epoch; draws epochs.

    Args:
        size: images in the training split.
        seed: seeds the epochs' draws.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed
        self.probs: np.ndarray | None = None  # None: the loader's own shuffle
        self._sums = np.zeros(size)
        self._counts = np.zeros(size, dtype=np.int64)

    def order(self, epoch: int) -> torch.Tensor | None:
        """The images of `epoch`, drawn with replacement; None before any importance exists."""
        if self.probs is None:
            return None
        rng = np.random.default_rng([self.seed, 0xDA7A, epoch])
        return torch.from_numpy(rng.choice(self.size, size=self.size, p=self.probs))

    def observe(self, ids: torch.Tensor, scores: torch.Tensor) -> None:
        index = ids.cpu().numpy()
        np.add.at(self._sums, index, scores.detach().double().cpu().numpy())
        np.add.at(self._counts, index, 1)

    def update(self, mix: float) -> None:
        seen = self._counts > 0
        if not seen.any():
            return
        means = np.full(self.size, float((self._sums[seen] / self._counts[seen]).mean()))
        means[seen] = self._sums[seen] / self._counts[seen]
        self.probs = mixed(means, mix)
        self._sums[:] = 0.0
        self._counts[:] = 0

    def state_dict(self) -> dict[str, Any]:
        return {"probs": None if self.probs is None else torch.from_numpy(self.probs),
                "sums": torch.from_numpy(self._sums), "counts": torch.from_numpy(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["sums"]) != self.size:
            raise ConfigError(f"checkpoint: PA&DA data weights for {len(state['sums'])} images, "
                              f"this run trains on {self.size}; resume with the same dataset")
        probs = state["probs"]
        self.probs = None if probs is None else probs.numpy().astype(np.float64)
        self._sums = state["sums"].numpy().astype(np.float64)
        self._counts = state["counts"].numpy().astype(np.int64)


def flat_choices(
    sampler: SubnetSampler, seed: int
) -> dict[str, tuple[Any, ...]] | None:
    """Each key's values as uniform draws reveal them; None when an arch holds non-scalars."""
    rng = np.random.default_rng([seed, 0x9A7D])
    found: dict[str, set[Any]] = {}
    for _ in range(_POOL):
        for key, value in sampler.sample(rng).items():
            if not isinstance(value, _SCALARS):
                return None
            found.setdefault(key, set()).add(value.item() if isinstance(value, np.generic)
                                             else value)
    return {key: tuple(sorted(values, key=lambda v: (type(v).__name__, v)))
            for key, values in found.items()}


class PadaSampler(SubnetSampler):
    """Draws paths by path importance and orders the data by data importance (module doc).

    Args:
        epochs: the run's epochs (the importance share after epoch e is (e + 1) / epochs).
    """

    kind = "pada"

    def __init__(
        self, space: SearchSpace, *, resolutions: Sequence[int], seed: int, epochs: int
    ) -> None:
        super().__init__(space, resolutions=resolutions, seed=seed)
        self.epochs = max(1, int(epochs))
        choices = flat_choices(UniformSampler(space, resolutions=resolutions, seed=seed), seed)
        self.paths = None if choices is None else PathImportance(choices)
        self.data: DataImportance | None = None

    def sample(self, rng: np.random.Generator, *, unlock: Sequence[str] = ALL) -> dict[str, Any]:
        if self.paths is None or "*" not in unlock:
            return self._uniform(rng, unlock)
        return self.space.normalize(self.paths.sample(rng))

    def attach(self, loader: BatchLoader) -> None:
        self.data = DataImportance(len(loader.split), self.seed)
        data = self.data

        def order(epoch: int) -> torch.Tensor:
            drawn = data.order(epoch)
            return loader.shuffled_order(epoch) if drawn is None else drawn

        loader.order_fn = order

    def observe_step(
        self, archs: Sequence[Arch], grad_norm: float, ids: torch.Tensor | None,
        scores: torch.Tensor | None,
    ) -> None:
        if self.paths is not None and np.isfinite(grad_norm):
            for arch in archs:
                self.paths.observe(arch, grad_norm)
        if self.data is not None and ids is not None and scores is not None:
            self.data.observe(ids, scores)

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        mix = min(1.0, (epoch + 1) / self.epochs)
        record: dict[str, Any] = {"pada_mix": mix}
        if self.paths is not None:
            self.paths.update(mix)
            record["pada_path_max_prob"] = max(float(p.max()) for p in self.paths.probs.values())
        if self.data is not None:
            self.data.update(mix)
            if self.data.probs is not None:
                record["pada_data_max_weight"] = float(self.data.probs.max() * self.data.size)
        return record

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["paths"] = None if self.paths is None else self.paths.state_dict()
        state["data"] = None if self.data is None else self.data.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.paths is not None and state.get("paths") is not None:
            self.paths.load_state_dict(state["paths"])
        if self.data is not None and state.get("data") is not None:
            self.data.load_state_dict(state["data"])


register_sampler(PadaSampler.kind, PadaSampler)

__all__ = ["DataImportance", "PadaSampler", "PathImportance", "flat_choices", "mixed"]
