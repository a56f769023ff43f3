"""Run numpy's BLAS on one thread inside predictor fitting and prediction.

OpenBLAS spins its worker threads while waiting; on a machine with as many busy processes as
cores (or more) a 2-thread BLAS is 10x slower than a 1-thread one for our small matrices,
and during profiling it would steal the core being measured. The prediction-rate target is
per core as well. threadpoolctl ships with scikit-learn (a dependency); without it, nothing
is limited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS libraries to one thread for the duration of the block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
