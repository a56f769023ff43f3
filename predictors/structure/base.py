"""Structural features: what a subnet executes, as physical quantities a latency model can weigh.

A `StructureDescriber` turns the rows of a batch's features (`encoded`, block `counts`) into
columns such as the multiply-accumulates, memory traffic and kernel launches of each kind of
operation. Latency on any device is close to a weighted sum of these (a roofline per layer:
compute, memory, launch overhead), so a linear model on a few dozen of them learns from a hundred
whole-subnet measurements what a per-slot one-hot model (hundreds of columns, one per slot and
choice) cannot.

Describers are pure functions of `(encoded, counts)`: the same arrays that every predictor
already receives, so a saved predictor needs nothing more than its featurizer to predict.
Spaces whose block keys spell out the layer shapes use `KeyTableDescriber` (one row of
descriptors per block key, so a batch is one matrix product); others compute from the encoding.
"""

from __future__ import annotations

import abc
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nas.registry import Registry
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

# Operation kinds every describer reports, in this order; a space without one leaves its columns
# at zero (constant columns carry no information and the linear models drop them).
OP_KINDS = (
    "conv", "pw", "dw3", "dw5", "dw7", "fc", "bn", "relu", "hswish", "add", "scale", "pool",
)
QUANTITIES = ("macs", "elems", "n")  # multiply-accumulates, elements read + written, launches
TOTALS = ("total.macs", "total.elems", "total.weights", "total.n")


@dataclass(frozen=True)
class Op:
    """One primitive operation a layer runs: what it computes and what it moves.

    Attributes:
        kind: one of `OP_KINDS`.
        macs: multiply-accumulates at batch 1.
        elems: activation elements read plus written (memory traffic in elements).
        weights: weight elements read.
    """

    kind: str
    macs: float = 0.0
    elems: float = 0.0
    weights: float = 0.0


def op_names() -> tuple[str, ...]:
    """Column names of `ops_row`: per kind macs/elems/n, then the totals."""
    return tuple(f"{kind}.{q}" for kind in OP_KINDS for q in QUANTITIES) + TOTALS


def ops_row(ops: Sequence[Op]) -> np.ndarray:
    """Descriptor row of a list of primitive operations (columns as `op_names()`)."""
    row = np.zeros(len(OP_KINDS) * len(QUANTITIES) + len(TOTALS))
    for op in ops:
        base = OP_KINDS.index(op.kind) * len(QUANTITIES)
        row[base : base + 3] += (op.macs, op.elems, 1.0)
    total = len(OP_KINDS) * len(QUANTITIES)
    row[total:] = (
        sum(op.macs for op in ops), sum(op.elems for op in ops),
        sum(op.weights for op in ops), float(len(ops)),
    )
    return row


class StructureDescriber(abc.ABC):
    """Structural columns of a batch of subnets, computed from their `(encoded, counts)`.

    Attributes:
        names: one name per column, e.g. `dw5.macs` (multiply-accumulates of 5x5 depthwise
            convolutions) or `total.n` (kernel launches).
        version: changes whenever the meaning of the columns changes; saved predictors check it.
    """

    names: tuple[str, ...]
    version: str

    @abc.abstractmethod
    def __call__(self, encoded: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """`(n, len(names))` float64 columns for the rows of `encoded` and `counts`."""

    @property
    def signature(self) -> str:
        """Short digest of the version and column names, recorded by predictors that use them."""
        text = self.version + "|" + ",".join(self.names)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class KeyTableDescriber(StructureDescriber):
    """`counts @ table`: every block key has one descriptor row, a subnet sums its blocks'.

    Args:
        names: column names.
        table: `(K, len(names))` descriptors, row i for the featurizer's block key i.
        version: see `StructureDescriber`.
    """

    def __init__(self, names: Sequence[str], table: np.ndarray, version: str) -> None:
        self.names = tuple(names)
        self.table = np.asarray(table, dtype=np.float64)
        self.version = version
        self._table32 = self.table.astype(np.float32)

    def __call__(self, encoded: np.ndarray, counts: np.ndarray) -> np.ndarray:
        # counts are small integers and the table's magnitudes span ~1e0..1e9: a float32 product
        # keeps ~7 digits, far below measurement noise, and is several times faster
        return np.asarray(counts @ self._table32, dtype=np.float64)


DescriberFactory = Callable[[SearchSpace, Sequence[str]], StructureDescriber]
DESCRIBERS: Registry[DescriberFactory] = Registry("structure describer")


def describer_for(space: SearchSpace, keys: Sequence[str]) -> StructureDescriber | None:
    """The describer registered for `space` (by name) with block-key columns `keys`, or None.

    Call it through the `predictors.structure` package, whose import registers the built-in
    describers (a lazy import of the package from here would close an import cycle).

    None when no describer is registered or when it cannot describe these keys (the
    structural predictor then falls back to the encoding, and says so in the log).
    """
    if space.name not in DESCRIBERS:
        return None
    try:
        return DESCRIBERS.get(space.name)(space, keys)
    except (ValueError, KeyError) as exc:
        logger.info("no structural features for %s: %s", space.name, exc)
        return None
