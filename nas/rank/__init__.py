"""Ranking: how well a scorer (supernet, proxy, parameter count) orders subnets like the truth.

The pure parts of `nas rank`, free of torch at import time: ranking metrics with bootstrap
intervals (`metrics`), ground-truth tables (`truth`), size-stratified subnet samples
(`sampling`), rank aggregation of scorers (`combined`) and the report folder (`report`).
The zero-cost proxies, which need torch, are in `nas.rank.proxies`.
"""

from __future__ import annotations

from nas.rank.combined import DEFAULT_MEMBERS, average_ranks, rank_average
from nas.rank.metrics import (
    Estimate,
    RankingMetrics,
    kendall_tau,
    precision_at_top,
    ranking_metrics,
    spearman,
    tau_at_top,
)
from nas.rank.report import RankedSubnet, write_report
from nas.rank.sampling import SampledSubnet, sample_by_size
from nas.rank.truth import TruthTable, read_truth

__all__ = [
    "DEFAULT_MEMBERS",
    "Estimate",
    "RankedSubnet",
    "RankingMetrics",
    "SampledSubnet",
    "TruthTable",
    "average_ranks",
    "kendall_tau",
    "precision_at_top",
    "rank_average",
    "ranking_metrics",
    "read_truth",
    "sample_by_size",
    "spearman",
    "tau_at_top",
    "write_report",
]
