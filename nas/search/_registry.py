"""The registry of search algorithms: searcher modules register their factories here.

Searcher modules import `register_searcher` from this module, never from the `nas.search`
package; `nas.search.searchers` imports the built-in ones and builds them by name.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.registry import Registry
from nas.search.base import Searcher

SearcherFactory = Callable[..., Searcher]
SEARCHERS: Registry[SearcherFactory] = Registry("search algorithm")
register_searcher = SEARCHERS.register
