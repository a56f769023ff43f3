"""A few-shot supernet: K copies of a supernet, each owning a part of the space.

Few-shot NAS (Zhao et al. 2021; gradient-matching splits: Hu et al., ICLR 2022) splits one
decision of the space (an NB201 edge, an OFA block's kernel size) into groups of candidates;
sub-supernet k holds the subnets whose value there is in group k. `FewShotSupernet` is itself a
`Supernet`: `set_active(arch)` routes to the sub-supernet that contains `arch`, so training,
BN recalibration, `TrainedSupernet`, `nas rank`, `nas search` and export score every subnet
with its own sub-supernet without knowing about the split.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from nas.arch import Arch
from nas.errors import ConfigError, IncompatibleArtifactError
from nas.supernet.base import Supernet

if TYPE_CHECKING:  # spaces import this package's base: no import back at run time
    from search_spaces.base import Choice, SearchSpace

# supernet/few_shot.json of a few-shot run: the split, when it was made and what it was chosen
# from (each decision's score and its candidates' gradient distances)
FEW_SHOT_FILE = "few_shot.json"


@dataclass(frozen=True)
class Split:
    """Where a supernet was split and how its candidates were grouped.

    Attributes:
        choice: the decision split on.
        groups: a partition of `choice.candidates`; sub-supernet k owns group k.
    """

    choice: Choice
    groups: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        flat = [value for group in self.groups for value in group]
        if sorted(map(str, flat)) != sorted(map(str, self.choice.candidates)) or not all(
            self.groups
        ):
            raise ConfigError(f"few-shot split of {self.choice.name}: expected non-empty groups "
                              f"partitioning {list(self.choice.candidates)}, got "
                              f"{[list(g) for g in self.groups]}")

    def group_of(self, arch: Arch) -> int:
        """The sub-supernet holding canonical `arch`."""
        value = self.choice.value(arch)
        for index, group in enumerate(self.groups):
            if value in group:
                return index
        raise ConfigError(f"{self.choice.name}={value!r} is in no group of the few-shot split")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.choice.key, "index": self.choice.index,
                "groups": [list(group) for group in self.groups]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: SearchSpace) -> Split:
        """The split `to_dict` wrote, checked against `space`'s choices.

        Raises:
            IncompatibleArtifactError: `space` has no such choice.
        """
        index = data.get("index")
        for choice in space.few_shot_choices():
            if choice.key == data.get("key") and choice.index == index:
                return cls(choice, tuple(tuple(group) for group in data["groups"]))
        raise IncompatibleArtifactError(
            f"few-shot split on {data.get('key')}[{index}]: space '{space.name}' has no such "
            "choice; the weights were made by another version of the space"
        )


class FewShotSupernet(Supernet):
    """`len(split.groups)` sub-supernets, each a copy of `base` (weights and BN statistics).

    Args:
        base: the supernet to split (left as it is: every sub-supernet is a deep copy).
        split: which sub-supernet owns which subnets.
    """

    def __init__(self, base: Supernet, split: Split) -> None:
        super().__init__()
        self.space = base.space
        self.split = split
        self.subnets = nn.ModuleList(copy.deepcopy(base) for _ in split.groups)
        self.current = self.split.group_of(base.active())
        self.sub(self.current).set_active(base.active())

    def sub(self, index: int) -> Supernet:
        net = self.subnets[index]
        assert isinstance(net, Supernet)
        return net

    def owner(self, arch: Arch) -> Supernet:
        """The sub-supernet that contains `arch`."""
        return self.sub(self.split.group_of(self.space.normalize(arch)))

    def set_active(self, arch: Arch) -> None:
        self.current = self.split.group_of(self.space.normalize(arch))
        self.sub(self.current).set_active(arch)

    def active(self) -> dict[str, Any]:
        return self.sub(self.current).active()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.subnets[self.current](x)
        return out

    def extract_subnet(self, arch: Arch) -> nn.Module:
        return self.owner(arch).extract_subnet(arch)

    def input_resolution(self, arch: Arch) -> int | None:
        return self.owner(arch).input_resolution(arch)

    def reorganize_channels(self) -> None:
        for index in range(len(self.subnets)):
            self.sub(index).reorganize_channels()

    def block_module(self, key: str) -> tuple[nn.Module, tuple[int, ...]]:
        # every sub-supernet has the same blocks: timing one times them all
        return self.sub(self.current).block_module(key)


def split_supernet(base: Supernet, split: Split | Mapping[str, Any] | None) -> Supernet:
    """`base` split by `split` (a `Split` or its `to_dict`), or `base` itself for None."""
    if split is None:
        return base
    if not isinstance(split, Split):
        split = Split.from_dict(split, base.space)
    return FewShotSupernet(base, split)


def groups_text(split: Split) -> str:
    """`edge_1_0: none,skip_connect | nor_conv_1x1,...` for messages."""
    return f"{split.choice.name}: " + " | ".join(
        ",".join(map(str, group)) for group in split.groups
    )


def partitions(items: Sequence[Any], k: int) -> list[tuple[tuple[Any, ...], ...]]:
    """Every partition of `items` into exactly `k` non-empty groups (order of groups: by their
    first item), e.g. 15 for 5 items in 2 groups, 25 in 3."""
    if k < 1 or k > len(items):
        return []
    if k == 1:
        return [(tuple(items),)]
    first, rest = items[0], list(items[1:])
    out: list[tuple[tuple[Any, ...], ...]] = []
    # `first` alone, the rest in k-1 groups
    out += [((first,), *groups) for groups in partitions(rest, k - 1)]
    # `first` joins one of the k groups of the rest
    for groups in partitions(rest, k):
        for i in range(k):
            joined = list(groups)
            joined[i] = (first, *groups[i])
            out.append(tuple(sorted(joined, key=lambda g: list(items).index(g[0]))))
    return out


__all__ = [
    "FEW_SHOT_FILE", "FewShotSupernet", "Split", "groups_text", "partitions", "split_supernet",
]
