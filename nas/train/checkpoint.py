"""Training checkpoints (the final weights of a supernet: `nas.supernet.weights`).

- `checkpoint.pt` (`supernet/checkpoint.pt` for every supernet trainer; stand-alone and
  fine-tuning runs write theirs in their own folder): the full training state of any trainer
  of the shared loop: the position (phase, epoch, batch, step), the trainer's options and
  space spec (as JSON text), the RNG states (every rank's under torchrun) and the trainer's own
  state. Written atomically with `torch.save`, read with `torch.load(weights_only=True)`, so
  everything in it is a tensor or a plain type.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nas.artifact_kinds import CHECKPOINT
from nas.artifacts import RunDir, atomic_save_with
from nas.errors import ArtifactError, IncompatibleArtifactError
from nas.readers import Kind, check_shape, damaged, load_torch, parse_json
from nas.schema import Number, Obj

# a kill loses at most this much training by default: 200 steps alone can be many minutes
DEFAULT_CHECKPOINT_MINUTES = 2.0

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2  # 2: one format for every trainer (1: once-for-all only)
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass(frozen=True)
class Position:
    """Where training continues: the next batch to train, and steps done so far."""

    phase: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0

    def advanced(self, batches_per_epoch: int, epochs_in_phase: int) -> Position:
        """The position after training batch `self.batch` (normalised to epoch/phase ends)."""
        phase, epoch, batch = self.phase, self.epoch, self.batch + 1
        if batch >= batches_per_epoch:
            epoch, batch = epoch + 1, 0
        if epoch >= epochs_in_phase:
            phase, epoch = phase + 1, 0
        return Position(phase, epoch, batch, self.step + 1)

    @property
    def at_phase_start(self) -> bool:
        return self.epoch == 0 and self.batch == 0


def capture_rng() -> dict[str, Any]:
    """Torch CPU (and CUDA) RNG states as tensors; dropout and friends draw from them."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run: RunDir) -> Path:
    return run.sub("supernet", CHECKPOINT_FILE)


# On disk the position's fields are top-level keys and the options and space spec JSON text,
# so a checkpoint reads back without pickle and without this package's classes.
_POSITION_KEYS = ("phase", "epoch", "batch", "step")
_JSON_KEYS = ("config", "space")
_POSITION = Kind(CHECKPOINT.name, Obj({k: Number(integer=True, low=0) for k in _POSITION_KEYS}),
                 CHECKPOINT.remedy)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a training state atomically.

    `state` holds a `Position` under "position", JSON-able "config" and "space", and tensors
    or plain values under every other key.
    """
    payload = {key: value for key, value in state.items() if key != "position"}
    payload.update(asdict(state["position"]))
    payload["format"] = CHECKPOINT_FORMAT
    for key in _JSON_KEYS:
        payload[key] = json.dumps(state.get(key, {}), sort_keys=True)
    atomic_save_with(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (no pickle of arbitrary objects)."""
    if not path.is_file():
        raise ArtifactError(
            f"no checkpoint at {path}; start the run without --resume (or check --run/--runs-dir)"
        )
    payload = load_torch(path, CHECKPOINT, map_location=map_location, what="checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise IncompatibleArtifactError(
            f"{path}: expected checkpoint format {CHECKPOINT_FORMAT}, got "
            f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__}"
            "; it was written by another version of nas: start the run again without --resume"
        )
    try:
        for key in _JSON_KEYS:
            payload[key] = parse_json(payload[key])
            if not isinstance(payload[key], dict):
                raise TypeError(key)
        check_shape({key: payload[key] for key in _POSITION_KEYS}, path, _POSITION)
    except (KeyError, TypeError, ValueError):
        raise damaged(path, "its position or options are missing or not JSON",
                      CHECKPOINT) from None
    payload["position"] = Position(**{key: payload.pop(key) for key in _POSITION_KEYS})
    return payload
