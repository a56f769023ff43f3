"""`ofa-resnet50`: Once-for-All's ResNet50 space (`OFAResNets`, the `ofa_resnet50` model zoo net).

Canonical subnet config::

    {"depth": [4 ints in {0,1,2}],          # extra blocks per stage (stage s runs 2/2/4/2 + d)
     "expand_ratio": [18 floats in {0.2, 0.25, 0.35}],   # per block, stages in order (4/4/6/4)
     "width_mult": [6 floats in {0.65, 0.8, 1.0}],       # stem conv 1-2, stem conv 3, stages 1-4
     "stem_residual": bool,                 # run the residual middle stem conv
     "resolution": int}

Expand ratios of blocks that do not run are normalised to 0.2. `normalize()` accepts OFA's
`{"d": [5], "e": [18], "w": [6 indexes]}` (where `d[0] == 2` keeps the residual stem conv).
Encoding: one-hot expand ratio per block (zeros when the block does not run), one-hot depth per
stage, one-hot width per position, the stem flag, one-hot resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.arch import Arch
from nas.errors import ConfigError, InvalidArchError
from search_spaces._checks import check_exact_keys, checked_resolutions
from search_spaces._registry import register_space
from search_spaces.base import SearchSpace
from search_spaces.ofa_format import check_choice_list, is_ofa_format, resnet_from_ofa
from search_spaces.ofa_resnet50.layout import (
    BASE_DEPTHS,
    DEPTH_CHOICES,
    EXPAND_CHOICES,
    STAGE_STRIDES,
    WIDTH_CHOICES,
    ResLayer,
    mid_width,
    out_side,
    stage_width,
    stem_widths,
)

if TYPE_CHECKING:
    import optuna

    from nas.supernet.base import Supernet

MAX_BLOCKS = tuple(b + max(DEPTH_CHOICES) for b in BASE_DEPTHS)  # 4, 4, 6, 4
OFFSETS = tuple(sum(MAX_BLOCKS[:s]) for s in range(4))
NUM_BLOCKS = sum(MAX_BLOCKS)
KEYS = ("depth", "expand_ratio", "width_mult", "stem_residual", "resolution")
SMALL_INPUT_MAX = 64


@register_space("ofa-resnet50")
class OFAResNet50Space(SearchSpace):
    """Once-for-All's ResNet50 space with elastic depth, expand ratio and per-stage width.

    Args:
        num_classes: classifier outputs.
        in_channels: image channels.
        resolutions: input sides a subnet may use (default: `[image_size]`).
        image_size: the dataset's image side (default: the largest resolution, else 224).
        small_input: stride-1 stem without max-pool; None picks it for inputs up to 64 px.
        dropout: dropout rate before the classifier while training (OFA's default: 0).
        width_scale: multiplies every base width (1.0 is OFA's ResNet50; `tiny()` uses 0.25
            to keep tests fast).
    """

    name = "ofa-resnet50"
    encoding_version = 1
    family = "once-for-all"
    has_blocks = True

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        resolutions: Sequence[int] | None = None,
        image_size: int | None = None,
        small_input: bool | None = None,
        dropout: float = 0.0,
        width_scale: float = 1.0,
    ) -> None:
        image_size, res = checked_resolutions(
            num_classes=num_classes, in_channels=in_channels,
            resolutions=resolutions, image_size=image_size,
        )
        if not 0.0 < width_scale <= 4.0:
            raise ConfigError(f"width_scale: expected a value in (0, 4], got {width_scale}")
        self.num_classes, self.in_channels, self.dropout = num_classes, in_channels, dropout
        self.width_scale = float(width_scale)
        self.resolutions, self.image_size = res, int(image_size)
        self.small_input = res[-1] <= SMALL_INPUT_MAX if small_input is None else bool(small_input)

    @classmethod
    def tiny(cls) -> OFAResNet50Space:
        """A small construction for tests: 10 classes, 16 and 32 px inputs (small-input)."""
        return cls(num_classes=10, resolutions=[16, 32], image_size=32, width_scale=0.25)

    @property
    def dim(self) -> int:
        return NUM_BLOCKS * 3 + 4 * 3 + 6 * 3 + 1 + len(self.resolutions)

    def spec(self) -> dict[str, Any]:
        kwargs = {
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "resolutions": list(self.resolutions),
            "image_size": self.image_size,
            "small_input": self.small_input,
            "dropout": self.dropout,
            "width_scale": self.width_scale,
        }
        return {"name": self.name, "encoding_version": self.encoding_version, "kwargs": kwargs}

    def describe(self) -> dict[str, Any]:
        per_stage = [
            len(WIDTH_CHOICES) * sum(len(EXPAND_CHOICES) ** (b + d) for d in DEPTH_CHOICES)
            for b in BASE_DEPTHS
        ]
        total = 2 * len(WIDTH_CHOICES) ** 2 * len(self.resolutions)
        for count in per_stage:
            total *= count
        return {
            **self.spec(),
            "choices": {
                "depth": list(DEPTH_CHOICES),
                "expand_ratio": list(EXPAND_CHOICES),
                "width_mult": list(WIDTH_CHOICES),
                "stem_residual": [False, True],
                "resolution": list(self.resolutions),
            },
            "blocks": NUM_BLOCKS,
            "stages": 4,
            "num_subnets": total,
        }

    # -- construction of archs ------------------------------------------------------------
    def _canonical(
        self,
        depth: Sequence[int],
        er: Sequence[float],
        wm: Sequence[float],
        stem_residual: bool,
        resolution: int,
    ) -> dict[str, Any]:
        er = [float(e) for e in er]
        for s, d in enumerate(depth):
            for j in range(BASE_DEPTHS[s] + int(d), MAX_BLOCKS[s]):
                er[OFFSETS[s] + j] = EXPAND_CHOICES[0]
        return {
            "depth": [int(d) for d in depth],
            "expand_ratio": er,
            "width_mult": [float(w) for w in wm],
            "stem_residual": bool(stem_residual),
            "resolution": int(resolution),
        }

    def largest(self) -> dict[str, Any]:
        return self._canonical(
            [max(DEPTH_CHOICES)] * 4,
            [max(EXPAND_CHOICES)] * NUM_BLOCKS,
            [max(WIDTH_CHOICES)] * 6,
            True,
            self.resolutions[-1],
        )

    def smallest(self) -> dict[str, Any]:
        return self._canonical(
            [min(DEPTH_CHOICES)] * 4,
            [min(EXPAND_CHOICES)] * NUM_BLOCKS,
            [min(WIDTH_CHOICES)] * 6,
            False,
            self.resolutions[0],
        )

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return self._canonical(
            rng.choice(DEPTH_CHOICES, 4).tolist(),
            rng.choice(EXPAND_CHOICES, NUM_BLOCKS).tolist(),
            rng.choice(WIDTH_CHOICES, 6).tolist(),
            bool(rng.random() < 0.5),
            int(rng.choice(self.resolutions)),
        )

    def mutate(self, arch: Arch, rng: np.random.Generator, *, prob: float) -> dict[str, Any]:
        self.validate(arch)
        depth, er, wm = list(arch["depth"]), list(arch["expand_ratio"]), list(arch["width_mult"])
        for i in range(NUM_BLOCKS):
            if rng.random() < prob:
                er[i] = float(rng.choice(EXPAND_CHOICES))
        for s in range(4):
            old = depth[s]
            if rng.random() < prob:
                depth[s] = int(rng.choice(DEPTH_CHOICES))
            for j in range(BASE_DEPTHS[s] + old, BASE_DEPTHS[s] + depth[s]):
                er[OFFSETS[s] + j] = float(rng.choice(EXPAND_CHOICES))  # newly running block
        for i in range(6):
            if rng.random() < prob:
                wm[i] = float(rng.choice(WIDTH_CHOICES))
        stem = arch["stem_residual"] if rng.random() >= prob else not arch["stem_residual"]
        resolution = arch["resolution"]
        if rng.random() < prob:
            resolution = int(rng.choice(self.resolutions))
        return self._canonical(depth, er, wm, stem, resolution)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> dict[str, Any]:
        self.validate(a)
        self.validate(b)

        def mix(key: str) -> list[Any]:
            return [x if rng.random() < 0.5 else y for x, y in zip(a[key], b[key], strict=True)]

        depth, er, wm = mix("depth"), mix("expand_ratio"), mix("width_mult")
        stem = a["stem_residual"] if rng.random() < 0.5 else b["stem_residual"]
        resolution = a["resolution"] if rng.random() < 0.5 else b["resolution"]
        return self._canonical(depth, er, wm, stem, resolution)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        depth = [trial.suggest_categorical(f"depth_{s}", DEPTH_CHOICES) for s in range(4)]
        er = [
            trial.suggest_categorical(f"expand_ratio_{i}", EXPAND_CHOICES)
            for i in range(NUM_BLOCKS)
        ]
        wm = [trial.suggest_categorical(f"width_mult_{i}", WIDTH_CHOICES) for i in range(6)]
        stem = trial.suggest_categorical("stem_residual", (False, True))
        resolution = trial.suggest_categorical("resolution", tuple(self.resolutions))
        return self._canonical(depth, er, wm, stem, resolution)

    # -- encoding -------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for s in range(4):
            for j in range(BASE_DEPTHS[s] + arch["depth"][s]):
                i = OFFSETS[s] + j
                vector[3 * i + EXPAND_CHOICES.index(arch["expand_ratio"][i])] = 1.0
        base = 3 * NUM_BLOCKS
        for s, d in enumerate(arch["depth"]):
            vector[base + 3 * s + DEPTH_CHOICES.index(d)] = 1.0
        base += 12
        for i, w in enumerate(arch["width_mult"]):
            vector[base + 3 * i + WIDTH_CHOICES.index(w)] = 1.0
        base += 18
        vector[base] = float(arch["stem_residual"])
        vector[base + 1 + self.resolutions.index(arch["resolution"])] = 1.0
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (self.dim,):
            raise InvalidArchError(
                f"expected an encoding of shape ({self.dim},), got {vector.shape}"
            )

        def pick(start: int, choices: Sequence[Any]) -> Any:
            return choices[int(np.argmax(vector[start : start + len(choices)]))]

        er = [pick(3 * i, EXPAND_CHOICES) for i in range(NUM_BLOCKS)]
        base = 3 * NUM_BLOCKS
        depth = [pick(base + 3 * s, DEPTH_CHOICES) for s in range(4)]
        wm = [pick(base + 12 + 3 * i, WIDTH_CHOICES) for i in range(6)]
        base += 30
        resolution = self.resolutions[int(np.argmax(vector[base + 1 :]))]
        return self._canonical(depth, er, wm, bool(vector[base] > 0.5), resolution)

    # -- validation -----------------------------------------------------------------------
    def validate(self, arch: Arch) -> None:
        check_exact_keys(arch, KEYS)
        check_choice_list(arch, "depth", 4, DEPTH_CHOICES)
        check_choice_list(arch, "expand_ratio", NUM_BLOCKS, EXPAND_CHOICES)
        check_choice_list(arch, "width_mult", 6, WIDTH_CHOICES)
        if not isinstance(arch["stem_residual"], bool):
            raise InvalidArchError(
                f"stem_residual: expected true or false, got {arch['stem_residual']!r}"
            )
        resolution = arch["resolution"]
        if isinstance(resolution, bool) or resolution not in self.resolutions:
            raise InvalidArchError(
                f"resolution: expected one of {self.resolutions}, got {resolution!r}; "
                "construct the space with --image-size matching it"
            )

    def normalize(self, obj: Any) -> dict[str, Any]:
        if isinstance(obj, Mapping) and is_ofa_format(obj):
            obj = resnet_from_ofa(obj, width_mult_list=WIDTH_CHOICES, max_depth=max(DEPTH_CHOICES))
        if isinstance(obj, Mapping) and "resolution" not in obj:
            default = (
                self.image_size if self.image_size in self.resolutions else self.resolutions[-1]
            )
            obj = {**obj, "resolution": default}
        self.validate(obj)
        return self._canonical(
            obj["depth"],
            obj["expand_ratio"],
            obj["width_mult"],
            obj["stem_residual"],
            obj["resolution"],
        )

    # -- layers and cost ------------------------------------------------------------------
    def layers(self, arch: Arch) -> list[ResLayer]:
        """The layer groups the extracted subnet runs, in order."""
        side, wm = int(arch["resolution"]), arch["width_mult"]
        stem_mid, _ = stem_widths(wm[0], self.width_scale)
        _, stem_out = stem_widths(wm[1], self.width_scale)
        layers = [
            ResLayer("conv", side, self.in_channels, stem_mid, stride=1 if self.small_input else 2)
        ]
        side = layers[-1].out_resolution
        if arch["stem_residual"]:
            layers.append(ResLayer("conv", side, stem_mid, stem_mid, skip=True))
        layers.append(ResLayer("conv", side, stem_mid, stem_out))
        if not self.small_input:
            layers.append(ResLayer("pool", side, stem_out, stem_out, stride=2))
            side = layers[-1].out_resolution
        channels = stem_out
        for s in range(4):
            out = stage_width(s, wm[2 + s], self.width_scale)
            for j in range(BASE_DEPTHS[s] + arch["depth"][s]):
                stride = STAGE_STRIDES[s] if j == 0 else 1
                mid = mid_width(out, arch["expand_ratio"][OFFSETS[s] + j])
                layers.append(
                    ResLayer("bottleneck", side, channels, out, mid=mid, stride=stride, skip=j > 0)
                )
                side, channels = out_side(side, stride), out
        layers.append(ResLayer("classifier", side, channels, channels, classes=self.num_classes))
        return layers

    def complexity(self, arch: Arch) -> dict[str, int]:
        """Exact params and MACs of the extracted subnet (see `ResLayer.macs`)."""
        layers = self.layers(arch)
        return {
            "params": sum(layer.params() for layer in layers),
            "macs": sum(layer.macs() for layer in layers),
        }

    def block_keys(self, arch: Arch) -> list[str]:
        return [layer.key() for layer in self.layers(arch)]

    def block_key_universe(self, resolutions: Sequence[int] | None = None) -> list[str]:
        """Every key `block_keys` can return (enumerated over the choices that shape a layer)."""
        keys: dict[str, None] = {}
        for resolution in resolutions or self.resolutions:
            for stem in (False, True):
                for w0 in WIDTH_CHOICES:
                    for w1 in WIDTH_CHOICES:
                        arch = self._canonical(
                            [max(DEPTH_CHOICES)] * 4,
                            [EXPAND_CHOICES[0]] * NUM_BLOCKS,
                            [w0, w1, *[WIDTH_CHOICES[0]] * 4],
                            stem,
                            int(resolution),
                        )
                        for layer in self.layers(arch)[:4]:
                            if layer.kind != "bottleneck":
                                keys[layer.key()] = None
            for layer in self._bottleneck_universe(int(resolution)):
                keys[layer.key()] = None
        return list(keys)

    def _bottleneck_universe(self, resolution: int) -> list[ResLayer]:
        base = self.largest() | {"resolution": resolution}
        sides = [layer.resolution for layer in self.layers(base) if layer.kind == "bottleneck"]
        firsts = [OFFSETS[s] for s in range(4)]
        out: list[ResLayer] = []
        for s in range(4):
            ins = (
                [stem_widths(w, self.width_scale)[1] for w in WIDTH_CHOICES]
                if s == 0
                else [stage_width(s - 1, w, self.width_scale) for w in WIDTH_CHOICES]
            )
            for w in WIDTH_CHOICES:
                width = stage_width(s, w, self.width_scale)
                for e in EXPAND_CHOICES:
                    mid = mid_width(width, e)
                    for c in ins:
                        out.append(
                            ResLayer(
                                "bottleneck",
                                sides[firsts[s]],
                                c,
                                width,
                                mid=mid,
                                stride=STAGE_STRIDES[s],
                            )
                        )
                    out.append(
                        ResLayer(
                            "bottleneck", sides[firsts[s] + 1], width, width, mid=mid, skip=True
                        )
                    )
            final = out_side(sides[firsts[3]], STAGE_STRIDES[3])
        for w in WIDTH_CHOICES:
            width = stage_width(3, w, self.width_scale)
            out.append(ResLayer("classifier", final, width, width, classes=self.num_classes))
        return out

    def build_supernet(self) -> Supernet:
        from search_spaces.ofa_resnet50.supernet import OFAResNet50Supernet

        return OFAResNet50Supernet(self)
