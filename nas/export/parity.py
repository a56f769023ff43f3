"""Parity of exported files against the supernet: max |difference| of logits, equal top-1.

The reference is the supernet itself with the subnet active, in eval mode, after the same
batch-norm recalibration that produced the exported statistics. Each exported format is read
back from disk and run on the same validation batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from nas.errors import NasError

if TYPE_CHECKING:
    from nas.export.deploy import DeployForm

# max absolute logit difference allowed per format: the static network runs the same float32
# kernels as the supernet (1e-5 covers summation-order changes from sliced vs contiguous
# weights); onnxruntime fuses conv + BN + activation, which moves results by ~1e-6 relative.
# The limits hold for logits within +-1; beyond, they scale with the largest |logit|, because
# float32 rounding is relative: logits of 28 differ by ~1.4e-5 from summation order alone (seen
# on ofa-resnet50), which is 5e-7 relative and no sign of a wrong export.
TOLERANCES: Mapping[str, float] = {"pytorch": 1e-5, "torchscript": 1e-5, "onnx": 1e-4}


class ParityError(NasError):
    """An exported format whose outputs or accuracy differ from the supernet's subnet."""


@dataclass(frozen=True)
class FormatParity:
    """Parity of one format on the validation batch and on the whole validation split."""

    format: str
    max_abs_diff: float
    tolerance: float
    val_correct: int
    val_total: int
    reference_correct: int
    scale: float = 1.0  # max(1, largest |reference logit|)
    form: str = ""  # how the format holds the network (`nas.export.deploy.DeployForm.label`)

    @property
    def allowed(self) -> float:
        return self.tolerance * self.scale

    @property
    def outputs_match(self) -> bool:
        # `not >` so that a NaN difference fails
        return not self.max_abs_diff > self.allowed and self.max_abs_diff == self.max_abs_diff

    @property
    def top1_matches(self) -> bool:
        return self.val_correct == self.reference_correct

    @property
    def passed(self) -> bool:
        return self.outputs_match and self.top1_matches

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(
            allowed=self.allowed, outputs_match=self.outputs_match,
            top1_matches=self.top1_matches, passed=self.passed,
        )
        return record

    def problem(self) -> str:
        """One line saying what failed ('' when parity holds)."""
        held = f" [held as: {self.form}]" if self.form else ""
        if not self.outputs_match:
            return (
                f"{self.format}: max |logit difference| vs the supernet is "
                f"{self.max_abs_diff:.3g}, expected <= {self.allowed:.3g} ({self.tolerance:g} "
                f"x max(1, largest |logit| = {self.scale:.3g})){held}"
            )
        if not self.top1_matches:
            return (
                f"{self.format}: validation top-1 {self.val_correct}/{self.val_total} differs "
                f"from the supernet subnet's {self.reference_correct}/{self.val_total}{held}"
            )
        return ""


def logit_scale(reference: torch.Tensor) -> float:
    """max(1, largest |logit|): the factor the tolerances scale with."""
    return max(1.0, float(reference.detach().abs().max())) if reference.numel() else 1.0


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute elementwise difference (inf when shapes differ)."""
    if a.shape != b.shape:
        return float("inf")
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max())


def count_correct(
    predict: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[int, int]:
    """(correct, total) top-1 predictions of `predict` over `(images, labels)` batches."""
    correct = total = 0
    with torch.no_grad():
        for images, labels in batches:
            logits = predict(images)
            correct += int((logits.argmax(dim=1).cpu() == labels.cpu()).sum())
            total += int(labels.numel())
    return correct, total


class ParityCheck:
    """Checks callables against one reference: logits on the first validation batch, top-1 on
    the whole validation split (the reference runs once, each candidate once per call)."""

    def __init__(
        self,
        reference: Callable[[torch.Tensor], torch.Tensor],
        val: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        self.val = val
        self.correct, self.total = count_correct(reference, val)
        with torch.no_grad():
            self.logits = reference(val[0][0])

    def __call__(
        self, name: str, predict: Callable[[torch.Tensor], torch.Tensor], form: DeployForm
    ) -> FormatParity:
        correct, _ = count_correct(predict, self.val)
        return FormatParity(
            format=name, max_abs_diff=max_abs_diff(predict(self.val[0][0]), self.logits),
            tolerance=TOLERANCES[name], val_correct=correct, val_total=self.total,
            reference_correct=self.correct, scale=logit_scale(self.logits), form=form.label,
        )


def raise_on_failure(results: Iterable[FormatParity]) -> None:
    """Raise `ParityError` naming every format that failed, with its difference."""
    problems = [r.problem() for r in results if not r.passed]
    if problems:
        raise ParityError(
            "exported model does not match the supernet: " + "; ".join(problems)
            + " (the metrics.json in the export folder has the details; please report this)"
        )
