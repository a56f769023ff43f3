"""Once-for-All's checkpoints <-> this package's supernets, one tensor at a time.

OFA (han-cai/once-for-all) saves its elastic networks as `{"state_dict": net.state_dict()}`
under its own module names. Each OFA-derived space declares, in its `ofa_weights` module, which
of our tensors each OFA tensor is (an `OFAKeyMap`); renaming, shape checks and their error
messages live here once, for both directions. Every tensor maps one to one and keeps its
values; the only layout change is `conv1x1` (OFA's 1x1 conv weight is our linear weight).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import Tensor

from nas.errors import ConfigError, IncompatibleArtifactError

BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class TensorPair:
    """One tensor under OFA's name and ours.

    Attributes:
        ofa: OFA's state-dict key (its current names, as `OFAMobileNetV3.state_dict()` gives).
        ours: our supernet's state-dict key.
        conv1x1: OFA stores a 1x1 conv weight `(out, in, 1, 1)` where we store the equal
            linear weight `(out, in)` (squeeze-excite and feature-mix layers).
    """

    ofa: str
    ours: str
    conv1x1: bool = False


def bn_pairs(ofa_prefix: str, our_prefix: str) -> list[TensorPair]:
    """The five tensors of one batch norm (affine, running statistics, batch count)."""
    return [TensorPair(f"{ofa_prefix}.{name}", f"{our_prefix}.{name}") for name in BN_TENSORS]


def linear_pairs(ofa_prefix: str, our_prefix: str) -> list[TensorPair]:
    """Weight and bias of a linear layer (a classifier)."""
    return [TensorPair(f"{ofa_prefix}.{n}", f"{our_prefix}.{n}") for n in ("weight", "bias")]


def tensor_shape(
    state: Mapping[str, Tensor], key: str, *, source: str, expected: str
) -> tuple[int, ...]:
    """The shape of `state[key]`; a missing key means the file holds another network."""
    if key not in state:
        raise IncompatibleArtifactError(f"{source}: no tensor '{key}'; expected {expected}")
    return tuple(state[key].shape)


def check_ofa_input(ofa_class: str, *, small_input: bool, in_channels: int) -> None:
    """OFA's networks read 3-channel images through a stride-2 stem (ResNet: and a max-pool);
    a supernet with small-input strides or other channels has no OFA counterpart."""
    if small_input or in_channels != 3:
        raise ConfigError(
            f"OFA's {ofa_class} takes 3-channel images with a stride-2 stem; this supernet has "
            f"{in_channels} channels and small_input={small_input}"
        )


def ofa_alias(key: str) -> str:
    """The other name OFA's own `load_state_dict` tries for a key its network lacks.

    The same if/elif chain as `OFAMobileNetV3.load_state_dict` (static-layer names for dynamic
    ones and back), so that a file OFA's code loads is read here too.
    """
    rules = (
        (".bn.bn.", ".bn."),
        (".conv.conv.weight", ".conv.weight"),
        (".linear.linear.", ".linear."),
        (".linear.", ".linear.linear."),
        ("bn.", "bn.bn."),
        ("conv.weight", "conv.conv.weight"),
    )
    for old, new in rules:
        if old in key:
            return key.replace(old, new)
    return key


class OFAKeyMap:
    """The tensors of one OFA network class and of the space's supernet, pair by pair.

    Args:
        pairs: every tensor of both networks, in OFA's state-dict order.
    """

    def __init__(self, pairs: Iterable[TensorPair]) -> None:
        self.pairs = tuple(pairs)
        self.by_ofa = {pair.ofa: pair for pair in self.pairs}

    def canonical(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """`state` under OFA's current key names.

        Accepts what OFA's loader accepts: `.mobile_inverted_conv.` (the name of OFA's first
        releases, kept in its published MobileNetV3 files) for `.conv.`, and static-layer names
        for dynamic ones; DataParallel's `module.` prefix is dropped. Unknown keys are kept,
        for `from_ofa` to report.
        """
        if state and all(key.startswith("module.") for key in state):
            state = {key[len("module.") :]: value for key, value in state.items()}
        out: dict[str, Tensor] = {}
        for key, tensor in state.items():
            name = key.replace(".mobile_inverted_conv.", ".conv.")
            if name not in self.by_ofa and ofa_alias(name) in self.by_ofa:
                name = ofa_alias(name)
            out[name] = tensor
        return out

    def from_ofa(
        self, state: Mapping[str, Tensor], target: Mapping[str, Tensor], *, source: str, what: str
    ) -> dict[str, Tensor]:
        """Our state dict (shaped and typed as `target`) holding the values of OFA's `state`.

        Args:
            state: OFA's tensors under canonical names (see `canonical`).
            target: our supernet's own state dict (gives the expected shapes and dtypes).
            source: the file, for messages.
            what: the space and its sizes, for messages.

        Raises:
            IncompatibleArtifactError: a tensor of `state` has no place in the supernet, one is
                missing (batch counts may be), or a shape differs; names the first such key.
        """
        for key in state:
            if key not in self.by_ofa:
                raise IncompatibleArtifactError(
                    f"{source}: tensor '{key}' has no place in {what}; expected a checkpoint of "
                    "Once-for-All's elastic network (not a specialized subnet); pass the "
                    "--space it was trained as"
                )
        out: dict[str, Tensor] = {}
        for pair in self.pairs:
            mine = target[pair.ours]
            tensor = state.get(pair.ofa)
            if tensor is None and pair.ofa.endswith("num_batches_tracked"):
                out[pair.ours] = mine.clone()  # older checkpoints lack batch counts
                continue
            if tensor is None:
                raise IncompatibleArtifactError(
                    f"{source}: tensor '{pair.ofa}' is missing; {what} needs it (for "
                    f"'{pair.ours}'); check that the file is a complete OFA supernet checkpoint"
                )
            expected = (*mine.shape, 1, 1) if pair.conv1x1 else tuple(mine.shape)
            if tuple(tensor.shape) != expected:
                raise IncompatibleArtifactError(
                    f"{source}: tensor '{pair.ofa}' has shape {tuple(tensor.shape)}, {what} "
                    f"expects {expected}; pass the --width-mult the network was built with"
                )
            out[pair.ours] = tensor.detach().reshape(mine.shape).to(mine.dtype).clone()
        return out

    def to_ofa(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """OFA's state dict (current key names, OFA's order) from our supernet's `state`."""
        out: dict[str, Tensor] = {}
        for pair in self.pairs:
            tensor = state[pair.ours].detach()
            out[pair.ofa] = (tensor[..., None, None] if pair.conv1x1 else tensor).clone()
        return out


__all__ = [
    "BN_TENSORS",
    "OFAKeyMap",
    "TensorPair",
    "bn_pairs",
    "check_ofa_input",
    "linear_pairs",
    "ofa_alias",
    "tensor_shape",
]
