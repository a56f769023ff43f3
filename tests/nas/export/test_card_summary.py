from __future__ import annotations

from nas.export.card import describe_arch


def test_a_darts_genotype_is_described_whole() -> None:
    normal = [["sep_conv_3x3", i % 2] for i in range(8)]
    reduce = [["max_pool_3x3", i % 2] for i in range(8)]
    text = describe_arch({"normal": normal, "normal_concat": [2, 3, 4, 5],
                          "reduce": reduce, "reduce_concat": [2, 3, 4, 5]})
    assert text.count("sep_conv_3x3(") == 8 and text.count("max_pool_3x3(") == 8
    assert text.startswith("normal cell ") and "reduce cell " in text


def test_an_unknown_arch_is_not_cut() -> None:
    arch = {"ops": [f"op_{i}" for i in range(100)]}
    assert describe_arch(arch).count("op_") == 100
