"""Which trainer trains a space: its family (`SearchSpace.family`) -> method -> trainer.

A family offers one or more methods, the first being its default; several methods may share
one trainer class (the six bilevel methods) and one family may mix trainers (nb201 will offer
single-path and bilevel methods). Trainers are named by import path and imported only when a
run needs one, so configs and `--help` read the method names without importing torch, and a
trainer module can import the configs that validate against this table.

A plug-in adds a method with `TRAINERS.register(family, method, "package.module:Class")`
(or the class itself).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from nas.errors import ConfigError, NasError, closest_hint
from search_spaces import SPACES

# A trainer class (a `nas.train.trainer.RunTrainer`; typed loosely so that this table, read by
# the configs, imports no trainer) or its "module:Class" path.
TrainerEntry = type[Any] | str

# the methods of the bilevel trainer (the BilevelConfig validates against this list)
BILEVEL_METHODS = ("darts", "darts-2nd", "pc-darts", "gdas", "fbnet", "proxyless", "sd-darts",
                   "rarts", "rome")


class TrainerRegistry:
    """family -> {method -> trainer class or "module:Class"}, in registration order."""

    def __init__(self) -> None:
        self._families: dict[str, dict[str, TrainerEntry]] = {}

    def register(self, family: str, method: str, trainer: TrainerEntry) -> None:
        """Offer `method` for spaces of `family`; the first method of a family is its default."""
        methods = self._families.setdefault(family, {})
        if method in methods:
            raise NasError(f"training method '{method}' of family '{family}' is registered twice")
        methods[method] = trainer

    def register_all(
        self, family: str, methods: Iterable[str], trainer: TrainerEntry
    ) -> None:
        for method in methods:
            self.register(family, method, trainer)

    def families(self) -> list[str]:
        return sorted(self._families)

    def methods(self, family: str) -> tuple[str, ...]:
        """The methods offered for `family` (default first; empty for a family without any)."""
        return tuple(self._families.get(family, {}))

    def resolve(self, family: str, method: str, *, default: str) -> str:
        """The method a run of `family` uses when asked for `method`.

        `default` is the config's own default method: a family that does not offer it runs its
        own default instead (so `method: sandwich`, the default, means "darts" for a DARTS
        space), while any other method it does not offer is an error naming the valid ones.

        Raises:
            ConfigError: the family has no trainer, or does not offer `method`.
        """
        methods = self.methods(family)
        if not methods:
            raise ConfigError(
                f"spaces of family '{family}' have no trainer (families with trainers: "
                f"{', '.join(self.families())}); pick a space of one of those, or search a "
                "tabular space with `nas search --oracle FILE`"
            )
        if method in methods:
            return method
        if method == default:
            return methods[0]
        raise ConfigError(
            f"method: expected one of {', '.join(methods)}, got '{method}'"
            f"{closest_hint(method, list(methods))}"
        )

    def trainer(self, family: str, method: str) -> type[Any]:
        """The trainer class of `method` (imported on first use)."""
        entry = self._families.get(family, {}).get(method)
        if entry is None:
            raise ConfigError(f"no trainer for method '{method}' of family '{family}'")
        if isinstance(entry, str):
            module, _, name = entry.partition(":")
            entry = getattr(importlib.import_module(module), name)
            assert not isinstance(entry, str)
            self._families[family][method] = entry
        return entry


TRAINERS = TrainerRegistry()
TRAINERS.register_all("once-for-all", ("sandwich", "ps", "spos"),
                      "nas.train.once_for_all:OnceForAllTrainer")
# cells without elastic sizes: no progressive shrinking; single-path (SPOS) first, the
# standard way to train an NB201 supernet; the DARTS family searches its mixed supernet
TRAINERS.register_all("nb201", ("spos", "sandwich"), "nas.train.once_for_all:OnceForAllTrainer")
TRAINERS.register_all("nb201", BILEVEL_METHODS, "nas.train.bilevel:BilevelTrainer")
TRAINERS.register_all("darts", BILEVEL_METHODS, "nas.train.bilevel:BilevelTrainer")


def family_of(space: str) -> str:
    """The family of the registered space `space` (never guessed from its name)."""
    return SPACES.get(space).family


__all__ = ["BILEVEL_METHODS", "TRAINERS", "TrainerRegistry", "family_of"]
