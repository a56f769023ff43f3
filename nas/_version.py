"""The package version, in a module of its own so that `nas.artifacts` can record it without
importing the `nas` package (whose `__init__` reaches into `nas.export`)."""

from __future__ import annotations

__version__ = "0.1.0"
