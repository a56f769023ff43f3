"""Export from a run folder: what `nas export --run NAME` does, minus the printing.

Reads the trained supernet (`supernet/weights.safetensors`), the run's dataset, a search's
Pareto front (`search/TAG/pareto.json`) and the latency predictors of every profiled device
(`predictor/<device>/`), then calls `export_subnet` into `export/<arch_id>/` and records the
stage in the run's manifest.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.arch import arch_id
from nas.artifacts import RunDir
from nas.errors import ArtifactError, ConfigError, NasError
from nas.export.export import ExportReport, export_subnet
from nas.export.formats import FORMATS
from nas.export.pick import Front, Pick, pick, read_front
from nas.locks import stage_lock
from nas.names import check_relative_out
from nas.profile.devices import TimingSetup
from search_spaces.base import SearchSpace

logger = logging.getLogger(__name__)

STAGE = "export"
PARETO = "pareto.json"
GENOTYPE = "genotype.json"  # the network of `nas train --genotype` (`--arch`: train/arch.json)
TRAIN_STAGE = "train"


@dataclass(frozen=True)
class RunExport:
    """An export made from a run, and how its subnet was chosen."""

    report: ExportReport
    pick: Pick
    search_tag: str | None


def search_tags(run: RunDir) -> list[str]:
    """Tags of the run's searches that wrote a front, newest first."""
    root = run.path / "search"
    if not root.is_dir():
        return []
    fronts = [p for p in root.glob(f"*/{PARETO}") if p.is_file()]
    return [p.parent.name for p in sorted(fronts, key=lambda p: p.stat().st_mtime, reverse=True)]


def find_front(run: RunDir, tag: str | None) -> tuple[Front | None, str | None]:
    """The front of search `tag` (default: the newest search), or (None, None) if none ran."""
    tags = search_tags(run)
    if tag is None:
        if not tags:
            return None, None
        tag = tags[0]
        if len(tags) > 1:
            logger.info("run %s has searches %s; using the newest, '%s'", run.name, tags, tag)
    path = run.path / "search" / tag / PARETO
    if not path.is_file():
        raise ArtifactError(
            f"run '{run.name}' has no search '{tag}' ({path} is missing); "
            f"searches there: {', '.join(tags) or 'none'} (run `nas search --run {run.name}`)"
        )
    return read_front(path), tag


def profiled_devices(run: RunDir) -> list[str]:
    """Device folder names under `predictor/` that hold a fitted predictor."""
    root = run.path / "predictor"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.rglob("meta.json")))


def predictor_latencies(
    run: RunDir, space: SearchSpace, archs: Sequence[Mapping[str, Any]], devices: Sequence[str]
) -> tuple[dict[str, list[float]], dict[str, dict[str, Any]]]:
    """Predicted ms of `archs` per profiled device (by device name), and each predictor's meta.

    Args:
        devices: device names or their `predictor/` folder names.
    """
    from predictors.io import load_predictor

    predicted: dict[str, list[float]] = {}
    metas: dict[str, dict[str, Any]] = {}
    for folder in devices:
        try:
            model, meta = load_predictor(run, folder, space=space)
        except NasError as exc:  # an unreadable predictor should not block the export
            logger.warning("skipping the latency predictor of %s: %s", folder, exc)
            continue
        # the folder name is filesystem-safe (`cuda-1`); the recorded setup has the real name
        device = str((meta.get("setup") or {}).get("device") or folder)
        predicted[device] = [float(v) for v in model.predict(list(archs))]
        metas[device] = meta
    return predicted, metas


def timing_setups(run: RunDir, space: SearchSpace) -> dict[str, TimingSetup]:
    """Devices of this machine to time `run`'s exports on, with the threads and clock each was
    profiled with (`cpu` with 1 thread, the profiler's default, when it was not profiled)."""
    _, metas = predictor_latencies(run, space, [], profiled_devices(run))
    return _local_devices(metas)


def _local_devices(metas: Mapping[str, Mapping[str, Any]]) -> dict[str, TimingSetup]:
    """Devices to time the export on: `cpu` always, plus profiled devices of this very
    machine, each with the threads and clock it was profiled with (so numbers compare)."""
    from nas.fingerprint import mismatch_warning

    local: dict[str, TimingSetup] = {"cpu": TimingSetup(threads=1)}
    for name, meta in metas.items():
        setup = meta.get("setup") or {}
        device = str(setup.get("device") or name)
        recorded = meta.get("fingerprint")
        if device == "cpu" or (isinstance(recorded, dict) and "cpu_model" in recorded
                               and mismatch_warning(recorded) is None):
            local[device] = TimingSetup.of(setup)
    return local


def _commands(run: RunDir, tag: str | None, argv: Sequence[str] | None) -> list[str]:
    """The command lines of the stages that produced this export, oldest first."""
    stages = run.manifest().get("stages", {})
    wanted = ["train-supernet", "import-supernet", "train",
              *sorted(s for s in stages if s.startswith("profile"))]
    if tag is not None:
        wanted.append(f"search-{tag}")
    lines = []
    for stage in wanted:
        command = (stages.get(stage) or {}).get("command")
        if isinstance(command, list) and command:
            lines.append(_as_nas(command))
    if argv:
        lines.append(_as_nas(list(argv)))
    return list(dict.fromkeys(lines))  # a stage rerun with the same command counts once


def _as_nas(argv: list[str]) -> str:
    """`/venv/bin/nas export ...` -> `nas export ...` (the program path is machine-specific)."""
    program = Path(str(argv[0])).name
    head = "nas" if program in ("nas", "cli.py", "__main__.py") or program.startswith("python") \
        else program
    return shlex.join([head, *map(str, argv[1:])])


def export_from_run(
    run: RunDir,
    *,
    pick_rule: str = "best",
    search_tag: str | None = None,
    device: str | None = None,
    formats: Sequence[str] = FORMATS,
    out_dir: Path | None = None,
    calib_batches: int | None = None,
    argv: Sequence[str] | None = None,
    wait: bool = False,
) -> RunExport:
    """Pick a subnet of `run` and export it (see `nas export --help` for the rules).

    Args:
        run: a run with a trained supernet.
        pick_rule: `best`, `INDEX`, `latency<=MS` or a subnet config (JSON or file).
        search_tag: which search's front (default: the newest).
        device: the device `latency<=MS` refers to (default: the search's).
        formats: export formats.
        out_dir: export folder (default `runs/NAME/export/<arch_id>/`).
        calib_batches: BN recalibration batches (default: the run's `bn_calibration_batches`).
        argv: the command line, recorded in the model card and the manifest.
        wait: queue behind another export of this run instead of failing.
    """
    run.require()
    if out_dir is not None:
        check_relative_out(out_dir)
    # one export of a run at a time: they share the manifest's export stage
    with stage_lock(run.path, STAGE, wait=wait):
        return _export_from_run(run, pick_rule, search_tag, device, formats, out_dir,
                                calib_batches, argv)


def _export_from_run(
    run: RunDir, pick_rule: str, search_tag: str | None, device: str | None,
    formats: Sequence[str], out_dir: Path | None, calib_batches: int | None,
    argv: Sequence[str] | None,
) -> RunExport:
    from nas.supernet.trained import TrainedSupernet
    from nas.supernet.weights import weights_path

    run.require()
    if not weights_path(run).is_file() and run.trained_weights.is_file():
        return _export_trained_network(run, pick_rule, formats, out_dir, argv)
    trained = TrainedSupernet.load(run, "cpu")
    space, settings = trained.space, trained.settings
    front, tag = find_front(run, search_tag)
    if front is None and search_tag is not None:
        raise ArtifactError(f"run '{run.name}' has no search '{search_tag}'")
    devices = profiled_devices(run)
    latency_fn = _latency_fn(run, space, device) if device is not None else None
    chosen = pick(pick_rule, front=front, normalize=space.normalize, device=device,
                  latency_fn=latency_fn)
    if chosen.rule == "config":
        tag = None  # the front played no part
    predicted, metas = predictor_latencies(run, space, [chosen.arch], devices)
    local_setups = _local_devices(metas)
    target = out_dir or run.path / "export" / arch_id(chosen.arch)
    search_cfg: Mapping[str, Any] = front.config if front is not None else {}
    batch_size = int(search_cfg.get("batch_size") or settings.batch_size)
    config = {
        "pick": pick_rule, "search_tag": tag, "device": device, "formats": list(formats),
        "out_dir": str(target), "arch_id": arch_id(chosen.arch),
    }
    run.begin_stage(STAGE, config=config, seed=settings.seed, device="cpu",
                    argv=list(argv) if argv else None)
    provenance = {
        "run": run.name, "runs_dir": str(run.root), "search_tag": tag, "pick": pick_rule,
        "pick_reason": chosen.reason, "supernet": str(weights_path(run)),
        "commands": _commands(run, tag, argv), **_weights_origin(trained.train_config),
    }
    try:
        report = export_subnet(
            trained.net, chosen.arch, target, splits=trained.splits, formats=formats,
            calib_batches=int(calib_batches if calib_batches is not None
                              else settings.calibration_batches),
            batch_size=batch_size, seed=settings.seed, provenance=provenance,
            predicted_latency={d: v[0] for d, v in predicted.items()},
            latency_devices=tuple(local_setups),
            latency_setups=local_setups,
        )
    except BaseException:
        run.end_stage(STAGE, status="failed")
        raise
    run.end_stage(STAGE, summary={"arch_id": report.arch_id, "out_dir": str(target),
                                  "status": report.metrics["status"]})
    return RunExport(report, chosen, tag)


def _export_trained_network(
    run: RunDir, pick_rule: str, formats: Sequence[str], out_dir: Path | None,
    argv: Sequence[str] | None,
) -> RunExport:
    """Export the network a run trained alone (`nas train`: no supernet, nothing to pick)."""
    from nas.artifact_kinds import GENOTYPE as GENOTYPE_KIND
    from nas.artifact_kinds import NETWORK_WEIGHTS as WEIGHTS_KIND
    from nas.artifact_kinds import TRAINED_ARCH
    from nas.artifacts import read_json
    from nas.export.export import export_network
    from nas.readers import damaged, load_tensors
    from nas.supernet.trained import EvalSettings
    from search_spaces import space_from_spec

    if pick_rule != "best":
        raise ConfigError(
            f"--pick {pick_rule}: run '{run.name}' trained one network alone (`nas train`), so "
            "there is nothing to pick; omit --pick"
        )
    manifest = run.manifest()
    space = space_from_spec(manifest["space"], source=str(run.manifest_path))
    source, kind = ((run.trained_arch, TRAINED_ARCH) if run.trained_arch.is_file()
                    else (run.path / GENOTYPE, GENOTYPE_KIND))
    arch = space.normalize(read_json(source, kind))
    train_cfg = dict((manifest.get("stages", {}).get(TRAIN_STAGE) or {}).get("config") or {})
    model = space.build_network(arch)
    state = load_tensors(run.trained_weights, WEIGHTS_KIND)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise damaged(run.trained_weights, "does not fit the trained network "
                      f"({(str(exc).splitlines()[1:2] or [''])[0].strip()})", WEIGHTS_KIND) \
            from None
    target = out_dir or run.export_dir(arch_id(arch))
    run.begin_stage(STAGE, config={"formats": list(formats), "out_dir": str(target)},
                    argv=list(argv) if argv else None)
    provenance = {"run": run.name, "runs_dir": str(run.root), "search_tag": None,
                  "pick": "trained network", "pick_reason": "the network trained from "
                  f"{source.relative_to(run.path)}", "weights": str(run.trained_weights),
                  "commands": _commands(run, None, argv)}
    try:
        splits = EvalSettings.from_train_config(train_cfg).load_dataset()
        timing = timing_setups(run, space)
        report = export_network(space, arch, model, target, splits=splits,
                                formats=formats, provenance=provenance,
                                latency_devices=tuple(timing), latency_setups=timing)
    except BaseException:
        run.end_stage(STAGE, status="failed")
        raise
    run.end_stage(STAGE, summary={"arch_id": report.arch_id, "out_dir": str(target),
                                  "status": report.metrics["status"]})
    return RunExport(report, Pick(arch, "config", "the trained network"), None)


def _weights_origin(train_config: Mapping[str, Any]) -> dict[str, str]:
    """`{"weights_from": ...}` for a supernet imported from elsewhere (`nas import-supernet`),
    so the model card says where the weights came from; nothing for one trained here."""
    from nas.supernet.ofa_import import describe_source

    source = train_config.get("imported_from")
    return {"weights_from": describe_source(source)} if isinstance(source, Mapping) else {}


def _latency_fn(run: RunDir, space: SearchSpace, device: str) -> Any:
    """Predicted latencies on `device` for `--pick latency<=MS` (None when not profiled)."""
    def predict(archs: Sequence[Mapping[str, Any]]) -> list[float]:
        from nas.artifacts import device_dirname

        predicted, _ = predictor_latencies(run, space, archs, [device_dirname(device)])
        if device not in predicted:
            raise ConfigError(
                f"--device {device}: run '{run.name}' has no latency predictor for it "
                f"(profiled: {', '.join(profiled_devices(run)) or 'none'}); "
                f"run `nas profile --run {run.name} --device {device}`"
            )
        return predicted[device]

    return predict


__all__ = ["RunExport", "export_from_run", "find_front", "profiled_devices", "search_tags",
           "timing_setups"]
