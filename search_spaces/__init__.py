"""Registered search spaces. Importing this package registers every built-in space."""

from __future__ import annotations

# built-in spaces register themselves in `_registry` when imported
import search_spaces.darts.space
import search_spaces.nb201.space
import search_spaces.ofa_mbv3.space
import search_spaces.ofa_resnet50.space  # noqa: F401
from search_spaces._registry import (
    SPACES,
    builtin_space_names,
    create_offered_space,
    create_sized_space,
    create_space,
    parse_space_options,
    register_space,
    space_from_spec,
)
from search_spaces.base import SearchSpace

__all__ = [
    "SPACES",
    "SearchSpace",
    "builtin_space_names",
    "create_offered_space",
    "create_sized_space",
    "create_space",
    "parse_space_options",
    "register_space",
    "space_from_spec",
]
