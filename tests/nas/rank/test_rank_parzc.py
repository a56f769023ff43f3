"""`parzc`: the learned combination, and `nas rank --labels` judging on held-out subnets only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.errors import ConfigError
from nas.rank.metrics import kendall_tau
from nas.rank.parzc import choose_labelled, fit_pairwise, fit_parzc, rank_features
from nas.rank.pipeline import RankConfig, RankTarget, rank_subnets
from search_spaces.nb201.cells import to_string
from search_spaces.nb201.synthetic import synthetic_table
from tests.fixtures.tiny_nb201 import register

NAME = register()


def test_rank_features_are_centred_ranks_with_ties_and_infinities() -> None:
    names, matrix = rank_features({"a": [3.0, -np.inf, 3.0, 10.0], "b": [1.0, 2.0, 3.0, 4.0]})
    assert names == ("a", "b")
    # a's ranks: 2.5, 1, 2.5, 4 -> (r - 1) / 3 - 0.5
    np.testing.assert_allclose(matrix[:, 0], [0.0, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(matrix[:, 1], [-0.5, -1 / 6, 1 / 6, 0.5])
    with pytest.raises(ConfigError, match="NaN"):
        rank_features({"a": [1.0, np.nan]})


def test_pairwise_fit_recovers_the_order_of_a_linear_truth() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    truth = 2.0 * features[:, 0] - features[:, 1]  # the third feature is noise
    weights = fit_pairwise(features[:30], truth[:30], l2=1e-3)
    assert weights[0] > 0 > weights[1] and abs(weights[2]) < abs(weights[1]) / 2
    assert kendall_tau(features[30:] @ weights, truth[30:]) > 0.9  # on subnets it never saw


def test_parzc_uses_the_truth_of_labelled_subnets_only() -> None:
    rng = np.random.default_rng(1)
    columns = {"p": rng.normal(size=40), "q": rng.normal(size=40)}
    truth = columns["p"] - 0.3 * columns["q"]
    labelled = choose_labelled(40, 12, np.random.default_rng(0))
    scores, fit = fit_parzc(columns, truth[labelled], labelled, seed=0)
    assert fit.labelled.tolist() == labelled.tolist() and fit.weight_of()["p"] > 0
    held = np.setdiff1d(np.arange(40), labelled)
    assert kendall_tau(scores[held], truth[held]) > 0.6
    # same labelled truths, same scores: nothing else reaches the fit
    again, _ = fit_parzc(columns, truth[labelled], labelled, seed=0)
    np.testing.assert_array_equal(scores, again)


@pytest.mark.parametrize("labels", [1, 39])
def test_choose_labelled_leaves_subnets_to_judge(labels: int) -> None:
    with pytest.raises(ConfigError, match="--labels: expected 2 to 38"):
        choose_labelled(40, labels, np.random.default_rng(0))


def _truth_file(path: Path, shift: dict[str, float] | None = None) -> Path:
    rows = synthetic_table(0)[::97]  # 162 cells of every size
    with path.open("w") as out:
        for row in rows:
            arch = to_string(row["arch"]) if isinstance(row["arch"], dict) else row["arch"]
            top1 = row["top1"] + (shift or {}).get(arch, 0.0)
            out.write(json.dumps({"arch": arch, "top1": top1}) + "\n")
    return path


def test_rank_with_labels_judges_every_scorer_on_held_out_subnets(tmp_path: Path) -> None:
    truth = _truth_file(tmp_path / "truth.jsonl")
    cfg = RankConfig(truth=str(truth), samples=24, labels=8, proxies="parzc,combined",
                     bootstrap=0)
    target = RankTarget(tmp_path, space=NAME, dataset="synthetic", image_size=16, tag="t")
    report = rank_subnets(cfg, target).report
    assert report["n"] == 16 and len(report["labelled"]) == 8
    judged = {row["arch_id"] for row in report["subnets"]}
    assert not judged & set(report["labelled"])
    assert {"parzc", "combined", "naswot", "params"} <= set(report["scores"])
    assert set(report["parzc_weights"]) >= {"naswot", "synflow", "jacov", "snip", "params"}
    parzc = {row["arch_id"]: row["parzc"] for row in report["subnets"]}

    # moving the truth of held-out subnets changes nothing parzc computes
    rows = {row["arch_id"]: row["arch"] for row in report["subnets"]}
    shifted = _truth_file(tmp_path / "shifted.jsonl",
                          {to_string(arch): 50.0 for arch in rows.values()})
    again = rank_subnets(RankConfig(**{**vars(cfg), "truth": str(shifted)}),
                         RankTarget(tmp_path, space=NAME, dataset="synthetic", image_size=16,
                                    tag="t2")).report
    assert again["labelled"] == report["labelled"]
    assert {row["arch_id"]: row["parzc"] for row in again["subnets"]} == pytest.approx(parzc)


def test_parzc_needs_labels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--labels N"):
        rank_subnets(RankConfig(truth="x.jsonl", proxies="parzc"),
                     RankTarget(tmp_path, space=NAME, dataset="synthetic"))
