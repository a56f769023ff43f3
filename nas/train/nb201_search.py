"""DARTS-family search on NAS-Bench-201 cells: the `nb201` family's `SearchFamily`.

The search network is `NB201MixedSupernet` at C = `--init-channels` (16) and N =
`--space-option cells_per_stage=N` (5), the benchmark's network; the found cell is an NB201
arch, written as the benchmark's string in the run's `arch.json`, with its network's exact
complexity.
"""

from __future__ import annotations

from typing import Any, cast

from nas.artifacts import RunDir
from nas.supernet.differentiable import DifferentiableSupernet
from nas.train.bilevel_config import BilevelConfig
from nas.train.bilevel_spaces import SearchFamily, supernet_options
from nas.train.search_latency import ExpectedLatency
from search_spaces import SearchSpace
from search_spaces.nb201.space import NB201Space


class NB201Search(SearchFamily):
    """See the module docstring."""

    def space_options(self, config: BilevelConfig) -> dict[str, Any]:
        return {"channels": config.init_channels}

    def build(self, space: SearchSpace, config: BilevelConfig) -> DifferentiableSupernet:
        from search_spaces.nb201.mixed import NB201MixedSupernet

        return NB201MixedSupernet(cast(NB201Space, space), **supernet_options(config))

    def latency_table(self, source: str, space: SearchSpace, run: RunDir, *,
                      resume: bool) -> tuple[dict[str, float], bool]:
        from nas.train.nb201_latency import search_latency_table

        return search_latency_table(source, cast(NB201Space, space), run, resume=resume)

    def expected_latency(self, space: SearchSpace, table: dict[str, float]) -> ExpectedLatency:
        from nas.train.nb201_latency import expected_latency

        return expected_latency(cast(NB201Space, space), table)

    def write_artifacts(self, run: RunDir, space: SearchSpace,
                        arch: dict[str, Any]) -> dict[str, Any]:
        return {"network": space.complexity(arch)}
