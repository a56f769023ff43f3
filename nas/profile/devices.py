"""Devices that run a model and time it: `cpu`, `cuda[:i]`, `onnxruntime[:Provider]`.

Lifecycle: `create_device(spec, threads=T)` builds a device (checking it exists here);
`device.prepare(model, input_shape)` readies one model (move, export, warm caches are the
caller's job) and returns a `Runner`; `runner(n)` makes `n` timed calls and returns each call's
latency in milliseconds. `nas.profile.measure` adds warm-up, repeats and outlier handling.
"""

from __future__ import annotations

import abc
import io
import logging
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, DeviceError
from nas.registry import Registry

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

Runner = Callable[[int], list[float]]
ONNX_OPSET = 17


class Device(abc.ABC):
    """A place to time models.

    Args:
        index: the device index or provider after the colon in the spec (`cuda:1`), or None.
        threads: intra-op threads (CPU-side); None keeps the library default.
    """

    family: str
    # "wall" (elapsed time) or "cpu" (the timing thread's CPU time); see `create_device`
    clock: str = "wall"

    def __init__(self, index: str | None = None, *, threads: int | None = None) -> None:
        self.index = index
        self.threads = threads

    @property
    def name(self) -> str:
        return self.family if self.index is None else f"{self.family}:{self.index}"

    @abc.abstractmethod
    def prepare(self, model: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        """Ready `model` for timing on inputs of `input_shape`; returns the timing runner."""

    def fingerprint(self) -> dict[str, Any]:
        from nas.fingerprint import fingerprint

        return fingerprint(self.name, threads=self.threads)


DEVICES: Registry[type[Device]] = Registry("device")


CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class TimingSetup:
    """How a device's profile was timed (its `setup`): every later timing of that device
    (search's front, export's card, fine-tuning) uses the same, so the numbers compare."""

    threads: int | None = None
    clock: str = "wall"

    @classmethod
    def of(cls, setup: Mapping[str, Any]) -> TimingSetup:
        threads = setup.get("threads")
        return cls(int(threads) if threads else None, str(setup.get("clock") or "wall"))

    def device(self, spec: str) -> Device:
        return create_device(spec, threads=self.threads, clock=self.clock)


def create_device(spec: str, *, threads: int | None = None, clock: str = "wall") -> Device:
    """`cpu`, `cuda`, `cuda:1`, `onnxruntime` or `onnxruntime:CUDAExecutionProvider`.

    Args:
        spec: the device.
        threads: intra-op threads.
        clock: "wall" (elapsed time, what users experience) or "cpu" (the CPU time of the
            calling thread: `cpu` device with 1 thread only). The CPU clock does not count the
            time the process waits while other processes hold the cores, so it is the one to
            use on a shared, busy machine; it still includes cache and memory effects.
    """
    if clock not in CLOCKS:
        raise ConfigError(f"clock: expected one of {', '.join(CLOCKS)}, got '{clock}'")
    family, _, index = spec.partition(":")
    device = DEVICES.get(family)(index or None, threads=threads)
    if clock == "cpu":
        if not isinstance(device, CpuDevice) or threads != 1:
            raise ConfigError(
                f"clock 'cpu' measures one thread's CPU time: expected --device cpu --threads 1, "
                f"got --device {spec} --threads {threads}; use --clock wall"
            )
        device.clock = "cpu"
    return device


def _example(input_shape: tuple[int, ...], seed: int = 0) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*input_shape, generator=generator)


@DEVICES.register("cpu")
class CpuDevice(Device):
    """torch eager mode on the CPU, `inference_mode`, a fixed number of threads."""

    family = "cpu"
    clock = "wall"

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        import torch

        # with one intra-op thread torch runs every op in the calling thread, so that thread's
        # CPU time is the model's compute time (see `create_device`)
        now = time.thread_time if self.clock == "cpu" else time.perf_counter
        if self.threads is not None:
            # process-wide: measurements in one process all use the same thread count
            torch.set_num_threads(self.threads)
        model = model.eval()
        x = _example(input_shape)

        def run(n: int) -> list[float]:
            out = []
            with torch.inference_mode():
                for _ in range(n):
                    start = now()
                    model(x)
                    out.append((now() - start) * 1e3)
            return out

        return run

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "clock": self.clock}


@DEVICES.register("cuda")
class CudaDevice(Device):
    """A CUDA GPU, timed with CUDA events around each call after a synchronisation."""

    family = "cuda"

    def __init__(self, index: str | None = None, *, threads: int | None = None) -> None:
        import torch

        super().__init__(index, threads=threads)
        if not torch.cuda.is_available():
            raise DeviceError("device 'cuda': expected a CUDA GPU, got none; use --device cpu")
        count = torch.cuda.device_count()
        if index is not None and (not index.isdigit() or int(index) >= count):
            raise DeviceError(f"device 'cuda:{index}': expected an index below {count}")

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        import torch

        device = torch.device(self.name)
        model = model.eval().to(device)
        x = _example(input_shape).to(device)

        def run(n: int) -> list[float]:
            out = []
            with torch.inference_mode():
                for _ in range(n):
                    begin = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
                    end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
                    torch.cuda.synchronize(device)
                    begin.record()
                    model(x)
                    end.record()
                    end.synchronize()
                    out.append(float(begin.elapsed_time(end)))
            return out

        return run


def export_onnx(model: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """ONNX bytes of `model` for a fixed input shape (input "input", output "output").

    Uses the TorchScript-based exporter (`dynamo=False`): the dynamo exporter needs the
    onnxscript package, which is not a dependency.
    """
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model.eval(), (_example(input_shape),), buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=ONNX_OPSET, input_names=["input"], output_names=["output"],
        )
    return buffer.getvalue()


@DEVICES.register("onnxruntime")
class OnnxRuntimeDevice(Device):
    """ONNX Runtime with the CPU execution provider (or another provider named after ':')."""

    family = "onnxruntime"

    def __init__(self, index: str | None = None, *, threads: int | None = None) -> None:
        super().__init__(index, threads=threads)
        import onnxruntime

        available = onnxruntime.get_available_providers()
        self.provider = self._provider_name(index or "CPUExecutionProvider")
        if self.provider not in available:
            raise DeviceError(
                f"device 'onnxruntime:{index}': expected one of the providers "
                f"{', '.join(available)}, got {self.provider}; install the onnxruntime build "
                "for that accelerator"
            )

    @staticmethod
    def _provider_name(text: str) -> str:
        return text if text.endswith("ExecutionProvider") else f"{text}ExecutionProvider"

    def session(self, onnx_bytes: bytes) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        return onnxruntime.InferenceSession(onnx_bytes, options, providers=[self.provider])

    def prepare(self, model: nn.Module, input_shape: tuple[int, ...]) -> Runner:
        session = self.session(export_onnx(model, input_shape))
        feed = {"input": _example(input_shape).numpy()}

        def run(n: int) -> list[float]:
            out = []
            for _ in range(n):
                start = time.perf_counter()
                session.run(None, feed)
                out.append((time.perf_counter() - start) * 1e3)
            return out

        return run
