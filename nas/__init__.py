"""nas: hardware-aware neural architecture search."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas._version import __version__

__all__ = ["__version__", "load_exported"]

if TYPE_CHECKING:
    from nas.export.load import load_exported


def __getattr__(name: str) -> Any:
    # lazy: `import nas` must stay light (no torch) for the CLI and the search-space code
    if name == "load_exported":
        from nas.export.load import load_exported

        return load_exported
    raise AttributeError(f"module 'nas' has no attribute '{name}'")
