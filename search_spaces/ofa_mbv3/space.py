"""`ofa-mbv3`: Once-for-All's MobileNetV3 search space (Cai et al., ICLR 2020).

Canonical subnet config (all keys required, lists in network order)::

    {"kernel_size": [20 ints in {3,5,7}], "expand_ratio": [20 ints in {3,4,6}],
     "depth": [5 ints in {2,3,4}], "resolution": int}

Block `4*s + j` is block `j` of stage `s`; it runs when `j < depth[s]`. The values of blocks that
do not run are normalised to the smallest choice (kernel 3, expand 3), so that equal subnets have
equal canonical JSON and arch ids. `normalize()` also accepts OFA's `{"ks","e","d","r","w"}`.

Encoding (`encode`, dim = 20*6 + 5*3 + len(resolutions)): per block one-hot kernel and one-hot
expand ratio (all zeros for blocks that do not run, as OFA's arch encoder does), then one-hot
depth per stage, then one-hot resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import Arch
from nas.errors import ConfigError, InvalidArchError
from search_spaces._checks import check_exact_keys, checked_resolutions
from search_spaces._registry import register_space
from search_spaces.base import BatchFeatures, Choice, SearchSpace
from search_spaces.ofa_format import check_choice_list, is_ofa_format, is_whole, mbv3_from_ofa
from search_spaces.ofa_mbv3.layout import (
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    KERNEL_CHOICES,
    MAX_DEPTH,
    NUM_STAGES,
    LayerDesc,
    MBV3Layout,
)

if TYPE_CHECKING:
    import optuna

    from nas.supernet.base import Supernet

NUM_BLOCKS = NUM_STAGES * MAX_DEPTH
KEYS = ("kernel_size", "expand_ratio", "depth", "resolution")
SMALL_INPUT_MAX = 64  # inputs up to this side use the small-input strides


@register_space("ofa-mbv3")
class OFAMobileNetV3Space(SearchSpace):
    """Once-for-All's MobileNetV3 space with elastic kernel, expand ratio, depth and resolution.

    Args:
        num_classes: classifier outputs.
        width_mult: 1.0 or 1.2, fixed per supernet as in OFA.
        in_channels: image channels.
        resolutions: input sides a subnet may use (default: `[image_size]`).
        image_size: the dataset's image side (default: the largest resolution, else 224).
        small_input: fewer stride-2 layers (see `layout`); None picks it when the largest
            resolution is at most 64.
        dropout: dropout rate before the classifier while training (OFA: 0.1).
    """

    name = "ofa-mbv3"
    encoding_version = 1
    family = "once-for-all"
    has_blocks = True

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        in_channels: int = 3,
        resolutions: Sequence[int] | None = None,
        image_size: int | None = None,
        small_input: bool | None = None,
        dropout: float = 0.1,
    ) -> None:
        if width_mult not in (1.0, 1.2):
            raise ConfigError(f"width_mult: expected 1.0 or 1.2 (as OFA), got {width_mult}")
        image_size, res = checked_resolutions(
            num_classes=num_classes, in_channels=in_channels,
            resolutions=resolutions, image_size=image_size,
        )
        self.num_classes, self.width_mult, self.in_channels = (
            num_classes,
            float(width_mult),
            in_channels,
        )
        self.resolutions, self.image_size, self.dropout = res, int(image_size), float(dropout)
        self.small_input = res[-1] <= SMALL_INPUT_MAX if small_input is None else bool(small_input)
        self.layout = MBV3Layout(in_channels, num_classes, self.width_mult, self.small_input)
        self.slots = self.layout.slots()
        self._cost_cache: dict[tuple[int, int, int, int], tuple[int, int]] = {}
        self._slot_res = {r: self._slot_resolutions(r) for r in res}

    @classmethod
    def tiny(cls) -> OFAMobileNetV3Space:
        """A small construction for tests: 10 classes, 16 and 32 px inputs (small-input)."""
        return cls(num_classes=10, resolutions=[16, 32], image_size=32)

    # -- description ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return NUM_BLOCKS * 6 + NUM_STAGES * 3 + len(self.resolutions)

    def spec(self) -> dict[str, Any]:
        kwargs = {
            "num_classes": self.num_classes,
            "width_mult": self.width_mult,
            "in_channels": self.in_channels,
            "resolutions": list(self.resolutions),
            "image_size": self.image_size,
            "small_input": self.small_input,
            "dropout": self.dropout,
        }
        return {"name": self.name, "encoding_version": self.encoding_version, "kwargs": kwargs}

    def describe(self) -> dict[str, Any]:
        per_stage = sum((len(KERNEL_CHOICES) * len(EXPAND_CHOICES)) ** d for d in DEPTH_CHOICES)
        return {
            **self.spec(),
            "choices": {
                "kernel_size": list(KERNEL_CHOICES),
                "expand_ratio": list(EXPAND_CHOICES),
                "depth": list(DEPTH_CHOICES),
                "resolution": list(self.resolutions),
            },
            "blocks": NUM_BLOCKS,
            "stages": NUM_STAGES,
            "stage_widths": list(self.layout.widths[2:7]),
            "num_subnets": per_stage**NUM_STAGES * len(self.resolutions),
        }

    # -- construction of archs ------------------------------------------------------------
    def _canonical(
        self, ks: Sequence[int], er: Sequence[int], depth: Sequence[int], resolution: int
    ) -> dict[str, Any]:
        """Build the canonical dict, resetting blocks that do not run to the first choice."""
        ks, er = [int(k) for k in ks], [int(e) for e in er]
        for stage, d in enumerate(depth):
            for j in range(int(d), MAX_DEPTH):
                ks[stage * MAX_DEPTH + j] = KERNEL_CHOICES[0]
                er[stage * MAX_DEPTH + j] = EXPAND_CHOICES[0]
        return {
            "kernel_size": ks,
            "expand_ratio": er,
            "depth": [int(d) for d in depth],
            "resolution": int(resolution),
        }

    def largest(self) -> dict[str, Any]:
        return self._canonical(
            [max(KERNEL_CHOICES)] * NUM_BLOCKS,
            [max(EXPAND_CHOICES)] * NUM_BLOCKS,
            [max(DEPTH_CHOICES)] * NUM_STAGES,
            self.resolutions[-1],
        )

    def smallest(self) -> dict[str, Any]:
        return self._canonical(
            [min(KERNEL_CHOICES)] * NUM_BLOCKS,
            [min(EXPAND_CHOICES)] * NUM_BLOCKS,
            [min(DEPTH_CHOICES)] * NUM_STAGES,
            self.resolutions[0],
        )

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._canonical(
            rng.choice(KERNEL_CHOICES, NUM_BLOCKS).tolist(),
            rng.choice(EXPAND_CHOICES, NUM_BLOCKS).tolist(),
            rng.choice(DEPTH_CHOICES, NUM_STAGES).tolist(),
            int(rng.choice(self.resolutions)),
        )

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        """Resample each choice with probability `prob`; blocks a deeper stage newly runs get
        fresh random values (their stored values are only the normalised placeholder)."""
        self.validate(arch)
        ks, er = list(arch["kernel_size"]), list(arch["expand_ratio"])
        old_depth, depth = list(arch["depth"]), list(arch["depth"])
        for i in range(NUM_BLOCKS):
            if rng.random() < prob:
                ks[i] = int(rng.choice(KERNEL_CHOICES))
            if rng.random() < prob:
                er[i] = int(rng.choice(EXPAND_CHOICES))
        for s in range(NUM_STAGES):
            if rng.random() < prob:
                depth[s] = int(rng.choice(DEPTH_CHOICES))
            for j in range(old_depth[s], depth[s]):
                ks[s * MAX_DEPTH + j] = int(rng.choice(KERNEL_CHOICES))
                er[s * MAX_DEPTH + j] = int(rng.choice(EXPAND_CHOICES))
        resolution = arch["resolution"]
        if rng.random() < prob:
            resolution = int(rng.choice(self.resolutions))
        return self._canonical(ks, er, depth, resolution)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        self.validate(a)
        self.validate(b)
        pick = rng.random(2 * NUM_BLOCKS + NUM_STAGES + 1) < 0.5
        ks = [a["kernel_size"][i] if pick[i] else b["kernel_size"][i] for i in range(NUM_BLOCKS)]
        er = [
            a["expand_ratio"][i] if pick[NUM_BLOCKS + i] else b["expand_ratio"][i]
            for i in range(NUM_BLOCKS)
        ]
        depth = [
            a["depth"][s] if pick[2 * NUM_BLOCKS + s] else b["depth"][s] for s in range(NUM_STAGES)
        ]
        resolution = a["resolution"] if pick[-1] else b["resolution"]
        return self._canonical(ks, er, depth, resolution)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        # every choice is always suggested (a static search space suits TPE and NSGA-II);
        # normalisation then drops the values of blocks that do not run
        ks = [
            trial.suggest_categorical(f"kernel_size_{i}", KERNEL_CHOICES)
            for i in range(NUM_BLOCKS)
        ]
        er = [
            trial.suggest_categorical(f"expand_ratio_{i}", EXPAND_CHOICES)
            for i in range(NUM_BLOCKS)
        ]
        depth = [trial.suggest_categorical(f"depth_{s}", DEPTH_CHOICES) for s in range(NUM_STAGES)]
        resolution = trial.suggest_categorical("resolution", tuple(self.resolutions))
        return self._canonical(ks, er, depth, resolution)

    # -- encoding -------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        nk, ne = len(KERNEL_CHOICES), len(EXPAND_CHOICES)
        for i in range(NUM_BLOCKS):
            if i % MAX_DEPTH < arch["depth"][i // MAX_DEPTH]:
                vector[i * 6 + KERNEL_CHOICES.index(arch["kernel_size"][i])] = 1.0
                vector[i * 6 + nk + EXPAND_CHOICES.index(arch["expand_ratio"][i])] = 1.0
        base = NUM_BLOCKS * (nk + ne)
        for s, d in enumerate(arch["depth"]):
            vector[base + s * 3 + DEPTH_CHOICES.index(d)] = 1.0
        vector[base + NUM_STAGES * 3 + self.resolutions.index(arch["resolution"])] = 1.0
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise InvalidArchError(
                f"expected an encoding of shape ({self.dim},), got {vector.shape}"
            )
        blocks = vector[: NUM_BLOCKS * 6].reshape(NUM_BLOCKS, 6)
        base = NUM_BLOCKS * 6
        depth = [
            DEPTH_CHOICES[int(np.argmax(vector[base + 3 * s : base + 3 * s + 3]))]
            for s in range(NUM_STAGES)
        ]
        ks = [KERNEL_CHOICES[int(np.argmax(row[:3]))] for row in blocks]
        er = [EXPAND_CHOICES[int(np.argmax(row[3:]))] for row in blocks]
        resolution = self.resolutions[int(np.argmax(vector[base + NUM_STAGES * 3 :]))]
        return self._canonical(ks, er, depth, resolution)

    # -- validation -----------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        check_exact_keys(arch, KEYS)
        check_choice_list(arch, "kernel_size", NUM_BLOCKS, KERNEL_CHOICES)
        check_choice_list(arch, "expand_ratio", NUM_BLOCKS, EXPAND_CHOICES)
        check_choice_list(arch, "depth", NUM_STAGES, DEPTH_CHOICES)
        if not is_whole(arch["resolution"]) or arch["resolution"] not in self.resolutions:
            raise InvalidArchError(
                f"resolution: expected one of {self.resolutions}, got {arch['resolution']!r}; "
                "construct the space with --image-size matching it"
            )

    def normalize(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, Mapping) and is_ofa_format(obj):
            obj = mbv3_from_ofa(obj, width_mult=self.width_mult)
        if isinstance(obj, Mapping) and "resolution" not in obj:
            obj = {
                **obj,
                "resolution": self.image_size
                if self.image_size in self.resolutions
                else self.resolutions[-1],
            }
        self.validate(obj)
        return self._canonical(
            obj["kernel_size"], obj["expand_ratio"], obj["depth"], obj["resolution"]
        )

    # -- cost -----------------------------------------------------------------------------
    def _slot_resolutions(self, resolution: int) -> list[int]:
        """Input side of every block slot for a given input resolution (strides are fixed)."""
        _, first = self.layout.stem(resolution)
        side, sides = first.out_resolution, []
        for slot in self.slots:
            sides.append(side)
            side = (side - 1) // slot.stride + 1
        return sides

    def _final_side(self, resolution: int) -> int:
        # strides sit only in first blocks of stages, which always run: the side after the
        # last stage does not depend on the depths
        side = self._slot_resolutions(resolution)[-1]
        return (side - 1) // self.slots[-1].stride + 1

    def layers(self, arch: Arch) -> list[LayerDesc]:
        """The layer groups the extracted subnet runs, in order (stem, blocks, head)."""
        resolution = int(arch["resolution"])
        sides = self._slot_res.get(resolution) or self._slot_resolutions(resolution)
        descs = list(self.layout.stem(resolution))
        for i, slot in enumerate(self.slots):
            if slot.index < arch["depth"][slot.stage]:
                descs.append(
                    self.layout.block(
                        slot, sides[i], arch["kernel_size"][i], arch["expand_ratio"][i]
                    )
                )
        descs.append(self.layout.head(self._final_side(resolution)))
        return descs

    def complexity(self, arch: Arch) -> dict[str, int]:
        """Exact params and MACs of the extracted subnet (see `LayerDesc.macs` for what counts)."""
        resolution = int(arch["resolution"])
        params = macs = 0
        for key in self._cost_keys(arch):
            cost = self._cost_cache.get(key)
            if cost is None:
                cost = self._cost_of(key, resolution)
                self._cost_cache[key] = cost
            params += cost[0]
            macs += cost[1]
        return {"params": params, "macs": macs}

    def _cost_keys(self, arch: Arch) -> list[tuple[int, int, int, int]]:
        # (slot, kernel, expand, resolution); slot -1 is the stem, -2 the head at last side
        depth, ks, er = arch["depth"], arch["kernel_size"], arch["expand_ratio"]
        resolution = int(arch["resolution"])
        keys = [(-1, 0, 0, resolution)]
        for s in range(NUM_STAGES):
            for j in range(depth[s]):
                i = s * MAX_DEPTH + j
                keys.append((i, ks[i], er[i], resolution))
        keys.append((-2, 0, 0, resolution))
        return keys

    def _cost_of(self, key: tuple[int, int, int, int], resolution: int) -> tuple[int, int]:
        slot_index, kernel, expand, _ = key
        sides = self._slot_res.get(resolution) or self._slot_resolutions(resolution)
        if slot_index == -1:
            descs: Sequence[LayerDesc] = self.layout.stem(resolution)
        elif slot_index == -2:
            descs = [self.layout.head(self._final_side(resolution))]
        else:
            descs = [self.layout.block(self.slots[slot_index], sides[slot_index], kernel, expand)]
        return sum(d.params() for d in descs), sum(d.macs() for d in descs)

    def batch_features(self, keys: Sequence[str]) -> BatchFeatures:
        from search_spaces.ofa_mbv3.batch_features import SlottedBatchFeatures

        return SlottedBatchFeatures(self, keys)

    def block_keys(self, arch: Arch) -> list[str]:
        """One latency-relevant key per layer group the static subnet runs (stem, blocks, head)."""
        return [desc.key() for desc in self.layers(arch)]

    def few_shot_choices(self) -> tuple[Choice, ...]:
        """Kernel size and expand ratio of the blocks every depth runs (the first
        `min(DEPTH_CHOICES)` of each stage): a skipped block's values are normalised away."""
        blocks = [MAX_DEPTH * stage + j for stage in range(NUM_STAGES)
                  for j in range(min(DEPTH_CHOICES))]
        return tuple(Choice(key, block, choices) for block in blocks
                     for key, choices in (("kernel_size", KERNEL_CHOICES),
                                          ("expand_ratio", EXPAND_CHOICES)))

    def block_key_universe(self, resolutions: Sequence[int] | None = None) -> list[str]:
        """Every key `block_keys` can return for these resolutions (about 93 per resolution)."""
        keys: dict[str, None] = {}
        for resolution in resolutions or self.resolutions:
            sides = self._slot_resolutions(int(resolution))
            for desc in self.layout.stem(int(resolution)):
                keys[desc.key()] = None
            for i, slot in enumerate(self.slots):
                for k in KERNEL_CHOICES:
                    for e in EXPAND_CHOICES:
                        keys[self.layout.block(slot, sides[i], k, e).key()] = None
            keys[self.layout.head(self._final_side(int(resolution))).key()] = None
        return list(keys)

    def build_supernet(self) -> Supernet:
        from search_spaces.ofa_mbv3.supernet import OFAMobileNetV3Supernet

        return OFAMobileNetV3Supernet(self)
