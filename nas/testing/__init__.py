"""Helpers for tests and benchmarks (as `optuna.testing`): never used by the tool itself."""

from __future__ import annotations
