"""What a space family supplies to DARTS-family search: `SearchFamily`, one per family.

The bilevel trainer knows a space only through its `DifferentiableSupernet` and this
adapter: how big a search network the options ask for, how to build it, the family's latency
tables (fbnet, proxyless) and the family's own files beside the run's `arch.json`. Adapters
are looked up by the space's `family` (`search_family`) and imported on first use, like the
trainers.
"""

from __future__ import annotations

import abc
import importlib
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError
from search_spaces import SPACES, SearchSpace, create_offered_space, parse_space_options

if TYPE_CHECKING:
    from nas.artifacts import RunDir
    from nas.data import DatasetSplits
    from nas.supernet.differentiable import DifferentiableSupernet
    from nas.train.bilevel_config import BilevelConfig
    from nas.train.search_latency import ExpectedLatency


class SearchFamily(abc.ABC):
    """A space family's part of a DARTS-family search (see the module docstring)."""

    @abc.abstractmethod
    def space_options(self, config: BilevelConfig) -> dict[str, Any]:
        """The space's constructor options for the search network `config` asks for."""

    @abc.abstractmethod
    def build(self, space: SearchSpace, config: BilevelConfig) -> DifferentiableSupernet:
        """The search network of `space` for `config.method` (initialised from the seed)."""

    @abc.abstractmethod
    def latency_table(self, source: str, space: SearchSpace, run: RunDir, *,
                      resume: bool) -> tuple[dict[str, float], bool]:
        """The table `--latency-table source` names and whether the run keeps a copy."""

    @abc.abstractmethod
    def expected_latency(self, space: SearchSpace, table: dict[str, float]) -> ExpectedLatency:
        """The differentiable expected latency of the searched cells under `table`."""

    def default_latency_source(self, run: RunDir, space: SearchSpace, *, resume: bool) -> str:
        """The table fbnet/proxyless use without `--latency-table` (default: time the ops)."""
        return "measure"

    def write_artifacts(self, run: RunDir, space: SearchSpace,
                        arch: dict[str, Any]) -> dict[str, Any]:
        """Write the family's own files of a found `arch`; returns summary entries."""
        return {}

    def space(self, config: BilevelConfig, splits: DatasetSplits) -> SearchSpace:
        """`config.space` sized by the dataset, `space_options` and `config.space_options`.

        Raises:
            ConfigError: a `--space-option` the space does not take, or one that a search
                option (`--init-channels`, `--layers`) sets too.
        """
        sized = {k: v for k, v in self.space_options(config).items() if v is not None}
        options = parse_space_options(config.space_options)
        twice = sorted(set(sized) & set(options))
        if twice:
            raise ConfigError(f"--space-option {twice[0]}: expected it once, got it also from "
                              "--init-channels or --layers; drop one of them")
        offered = {"num_classes": splits.num_classes, "in_channels": splits.channels,
                   "image_size": splits.image_size, **sized}
        return create_offered_space(config.space, offered, options)


def supernet_options(config: BilevelConfig) -> dict[str, Any]:
    """The `DifferentiableSupernet` options of `config.method`: partial channels and edge
    normalisation for pc-darts, ROME's topology (2 inputs per node, Gumbel-top-2)."""
    pc = config.method == "pc-darts"
    return {"partial_channels": config.partial_channels if pc else 1, "edge_norm": pc,
            "topology_inputs": 2 if config.method == "rome" else None, "seed": config.seed}


# family -> "module:Class" (or the adapter once imported)
_FAMILIES: dict[str, SearchFamily | str] = {
    "darts": "nas.train.darts_adapter:DartsSearch",
    "nb201": "nas.train.nb201_search:NB201Search",
}


def search_family(space: str) -> SearchFamily:
    """The adapter of the family of the registered space `space`."""
    family = SPACES.get(space).family
    entry = _FAMILIES.get(family)
    if entry is None:
        raise ConfigError(f"space '{space}' (family '{family}') has no differentiable supernet; "
                          f"DARTS-family search works on the families {', '.join(_FAMILIES)}")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)()
        assert isinstance(entry, SearchFamily)
        _FAMILIES[family] = entry
    return entry


__all__ = ["SearchFamily", "search_family", "supernet_options"]
