"""Zero-cost proxies of subnets of a space, on a few batches of a dataset: what `nas rank`
scores with and what `nas search --accuracy proxy:NAME` screens with.

Each subnet's network is extracted from one supernet (a run's trained one, or a fresh one built
once) and re-initialised from the seed (`ProxyInput.init_seed`), so a subnet scores the same
with or without a run. The batches are shuffled, un-augmented training images (the order from
the seed), resized to the subnet's input side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nas.data import BatchLoader, DatasetSplits
from nas.errors import ConfigError
from nas.rank.combined import DEFAULT_MEMBERS
from nas.rank.parzc import MEMBERS as PARZC_MEMBERS
from nas.rank.parzc import PARZC
from nas.rank.proxies import PROXIES, Batch, ProxyInput, ProxyScore, compute_proxies
from nas.supernet.base import Supernet
from nas.supernet.evaluate import resize_to
from search_spaces.base import SearchSpace

COMBINED = "combined"  # the rank average of `DEFAULT_MEMBERS`, scored over a population
POPULATION = (COMBINED, PARZC)  # scorers computed over the whole sample from other scorers
MEMBERS_OF = {COMBINED: DEFAULT_MEMBERS, PARZC: PARZC_MEMBERS}  # the proxies each one needs
SIZE_PROXIES = ("params", "macs")  # exact counts from the space: every ranking's baselines


def parse_proxies(text: str) -> list[str]:
    """`"naswot,synflow"` -> the names, checked against the registry (plus `combined`, `parzc`).

    Raises:
        NasError: an unknown name (the message lists the registered ones).
    """
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        if name not in POPULATION:
            PROXIES.get(name)
    return names


def proxies_to_compute(names: Sequence[str]) -> list[str]:
    """The registered proxies behind `names`: `combined` and `parzc` need their members."""
    wanted = [n for n in names if n not in POPULATION]
    for name, members in MEMBERS_OF.items():
        if name in names:
            wanted += [m for m in members if m not in wanted]
    return wanted


def proxy_batches(
    splits: DatasetSplits, *, batch_size: int, batches: int, seed: int
) -> list[Batch]:
    """`batches` shuffled, un-augmented training batches (normalised, on the CPU)."""
    if batch_size < 2 or batches < 1:
        raise ConfigError(
            f"proxy batches: expected batch size >= 2 and >= 1 batch, got {batch_size}, "
            f"{batches}"
        )
    loader = BatchLoader(splits.train, batch_size=batch_size, device="cpu", mean=splits.mean,
                         std=splits.std, shuffle=True, seed=seed)
    found = []
    for batch in loader.epoch(0):
        found.append(batch)
        if len(found) == batches:
            break
    return found


class ProxyScorer:
    """Scores subnets of `supernet.space` with registered proxies.

    Args:
        supernet: extracts each subnet's network (its weights are re-drawn from `seed`).
        batches: the data of the data-dependent proxies (at the dataset's image size).
        seed: the initialisation seed of every subnet.
        device: where the proxies run.
    """

    def __init__(
        self, supernet: Supernet, batches: Sequence[Batch], *, seed: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self.supernet, self.batches, self.seed, self.device = supernet, batches, seed, device

    @property
    def space(self) -> SearchSpace:
        return self.supernet.space

    @classmethod
    def fresh(
        cls, space: SearchSpace, batches: Sequence[Batch], *, seed: int,
        device: torch.device | str = "cpu",
    ) -> ProxyScorer:
        """A scorer over a newly built supernet of `space` (training-free ranking)."""
        with torch.random.fork_rng(devices=[]):  # its weights are re-drawn per subnet anyway
            torch.manual_seed(seed)
            supernet = space.build_supernet()
        return cls(supernet, batches, seed=seed, device=device)

    def score(self, arch: Mapping[str, Any], names: Sequence[str]) -> dict[str, ProxyScore]:
        """Each named proxy's value of `arch` and its cost (registered names only)."""
        if not names:
            return {}
        side = self.space.input_resolution(arch)
        subnet = ProxyInput(
            self.supernet.extract_subnet(arch),
            [(resize_to(images, side), labels) for images, labels in self.batches],
            complexity=self.space.complexity(arch),
            device=self.device,
            init_seed=self.seed,
        )
        return compute_proxies(names, subnet)


__all__ = [
    "COMBINED", "POPULATION", "SIZE_PROXIES", "ProxyScorer", "parse_proxies", "proxies_to_compute",
    "proxy_batches",
]
