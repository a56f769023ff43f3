"""The baselines a found NB201 cell is judged against, and how well a search's alphas rank
cells, both from the NAS-Bench-201 table (bench_darts_nb201.py's report).

- `random`: a cell drawn uniformly from the 15,625: its expected true accuracy is the table's
  mean (the search did no better than chance below that).
- `params`: the cell with the most weights (3x3 convolutions on every edge), the training-free
  pick; its parameter count also ranks cells beside the alphas.
- The alphas as a scorer: a cell scores the sum over its edges of the log softmax weight of
  its op (DARTS' argmax cell scores highest); Kendall tau against the table on a fixed sample
  of cells (tau over all 15,625 costs tens of seconds per scorer), with a bootstrap interval,
  and the found cell's place in the table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.artifacts import read_jsonl
from nas.rank import ranking_metrics
from search_spaces.nb201.cells import KEYS, from_string
from search_spaces.nb201.space import NB201Space

SAMPLE = 1000  # cells the ranking figures are measured on (seeded: every row the same cells)
RESAMPLES = 200


def params_of(archs: Sequence[str]) -> np.ndarray:
    """Weights of each cell's network at the benchmark's size (C=16, N=5)."""
    space = NB201Space()
    return np.array([space.complexity(from_string(a))["params"] for a in archs], dtype=float)


def baselines(table: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """True top-1 of a random cell (mean, sd) and of the largest cell (mean over ties)."""
    archs, accs = list(table), np.array(list(table.values()))
    params = params_of(archs)
    largest = accs[params == params.max()]
    return {"random": {"mean": float(accs.mean()), "sd": float(accs.std())},
            "params": {"mean": float(largest.mean()), "sd": float(largest.std()),
                       "cells": int(largest.size)}}


def alpha_scores(run: Path, archs: Sequence[str]) -> np.ndarray | None:
    """Each cell's score under the run's last logged alphas (None before the first log)."""
    records = list(read_jsonl(run / "supernet" / "alphas.jsonl"))
    if not records:
        return None
    log_w = np.log(np.clip(np.array(records[-1]["cell"], dtype=float), 1e-12, None))
    column = {op: i for i, op in enumerate(records[-1]["ops"])}  # the run's op order
    cells = [from_string(a) for a in archs]
    return np.array([sum(log_w[row, column[c[key]]] for row, key in enumerate(KEYS))
                     for c in cells])


def sample(table: Mapping[str, float]) -> list[str]:
    archs = sorted(table)
    picked = np.random.default_rng(0).choice(len(archs), size=min(SAMPLE, len(archs)),
                                             replace=False)
    return [archs[i] for i in sorted(picked)]


def ranking_rows(table: Mapping[str, float], runs: Mapping[str, Path]) -> list[dict[str, Any]]:
    """Kendall tau (and precision in the top 10%) of params and of each run's alphas."""
    archs = sample(table)
    truth = np.array([table[a] for a in archs])
    scores: dict[str, np.ndarray] = {"params": params_of(archs)}
    for name, run in runs.items():
        score = alpha_scores(run, archs)
        if score is not None:
            scores[name] = score
    metrics = ranking_metrics(truth, scores, rng=np.random.default_rng(0), resamples=RESAMPLES)
    return [{"scorer": name, "n": m.n, "tau": m.kendall_tau.value, "low": m.kendall_tau.low,
             "high": m.kendall_tau.high, "precision_top10": m.precision_top.value}
            for name, m in metrics.items()]


def better_share(table: Mapping[str, float], accuracy: float) -> float:
    """Share of the table's cells truly better than `accuracy` (0: the best cell)."""
    return sum(v > accuracy for v in table.values()) / len(table)


def fmt_tau(row: Mapping[str, Any]) -> str:
    if math.isnan(row["tau"]):
        return "-"
    return f"{row['tau']:.3f} [{row['low']:.2f}, {row['high']:.2f}]"


def mean_sd(values: Sequence[float]) -> str:
    if len(values) < 2:  # no spread to show: "± 0.00" would claim one
        return f"{statistics.mean(values):.2f} (1 seed)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
