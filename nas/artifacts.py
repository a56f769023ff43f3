"""Run folders (`runs/<name>/`), their layout, and atomic artifact writes.

`RunLayout` is the one place that names the folders of a run's stages (`profile/<device>/`,
`predictor/<device>/`, `search/<tag>/`, `export/<arch_id>/`, `train/`, `rank/<tag>/`) and of
devices; `RunDir` adds the manifest. A profile made without a run (`nas profile --space ...`)
keeps the same tree in `runs/_profiles/<space>[-KEY=VALUE...]-<side>px-<device>/`
(`standalone_profile`); a ranking made without a run (`nas rank --space ...`) goes to
`runs/_rank/<space>[-KEY=VALUE...]-<dataset>-<side>px/rank/<tag>/` (`standalone_rank`).

Every file is written to a temporary sibling and renamed into place, so a run killed at any
moment leaves either the old or the new version of a file, never half of one. Append-only logs
(`*.jsonl`) are flushed per line; readers skip a torn last line.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nas.errors import ArtifactError, ConfigError

MANIFEST = "manifest.json"
STANDALONE_PROFILES = "_profiles"
STANDALONE_RANKS = "_rank"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_with(path: Path, save: Any) -> None:
    """Atomically write a file produced by a library writer, `save(tmp_path)`.

    Used for `torch.save` and `safetensors` writers, which want a path of their own.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line; a crash mid-write leaves at most a torn last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        handle.flush()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, skipping blank lines and a torn (unparseable) last line."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if index == len(lines) - 1:
                return  # torn by a kill mid-append
            raise ArtifactError(f"{path}: line {index + 1} is not valid JSON") from None


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_revision() -> str | None:
    """The git commit of the nas source tree, with `+dirty` when it has changes; None if no git."""
    source = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every stage."""
    from nas._version import __version__

    info: dict[str, Any] = {
        "nas": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_revision": git_revision(),
    }
    for module in ("torch", "numpy", "optuna"):
        mod = sys.modules.get(module)
        if mod is None:
            try:
                mod = __import__(module)
            except ImportError:
                continue
        info[module] = getattr(mod, "__version__", "unknown")
    return info


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stage_status(info: Mapping[str, Any]) -> str:
    """A stage's status as recorded, except that a "running" stage whose writer process is
    gone (same machine, PID not alive) is "interrupted": a killed command cannot say so itself.

    A writer on another machine cannot be checked and stays "running".
    """
    status = str(info.get("status", "?"))
    writer = info.get("writer")
    if status != "running" or not isinstance(writer, Mapping):
        return status
    pid, host = writer.get("pid"), writer.get("host")
    if host == socket.gethostname() and isinstance(pid, int) and not process_alive(pid):
        return "interrupted"
    return status


def check_run_name(name: str) -> str:
    if not name or not set(name) <= _NAME_CHARS or name.startswith("."):
        raise ConfigError(f"run name must use letters, digits, '-', '_' or '.', got '{name}'")
    return name


def device_dirname(device: str) -> str:
    """A folder name for a device spec (`cuda:1` -> `cuda-1`)."""
    return device.replace(":", "-").replace("/", "-")


class RunLayout:
    """Where each stage's artifacts sit under `path` (a run folder or a run-less profile).

    Args:
        path: the folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def supernet_dir(self) -> Path:
        return self.path / "supernet"

    @property
    def profiles_dir(self) -> Path:
        return self.path / "profile"

    def profile_dir(self, device: str) -> Path:
        """Measurements of `device` (`profile/<device>/`)."""
        return self.profiles_dir / device_dirname(device)

    @property
    def predictors_dir(self) -> Path:
        return self.path / "predictor"

    def predictor_dir(self, device: str) -> Path:
        """Latency predictors of `device` (`predictor/<device>/`, see `predictors.io`)."""
        return self.predictors_dir / device_dirname(device)

    @property
    def searches_dir(self) -> Path:
        return self.path / "search"

    def search_dir(self, tag: str) -> Path:
        """One search's outputs and study (`search/<tag>/`)."""
        return self.searches_dir / tag

    @property
    def exports_dir(self) -> Path:
        return self.path / "export"

    def export_dir(self, arch_id: str) -> Path:
        """One exported subnet (`export/<arch_id>/`)."""
        return self.exports_dir / arch_id

    @property
    def train_dir(self) -> Path:
        """A network trained alone (`nas train`): checkpoint, metrics, weights, summary."""
        return self.path / "train"

    @property
    def trained_weights(self) -> Path:
        """The network trained alone (`train/weights.safetensors`)."""
        return self.train_dir / "weights.safetensors"

    @property
    def trained_arch(self) -> Path:
        """The subnet trained alone by `nas train --arch` (`train/arch.json`, canonical)."""
        return self.train_dir / "arch.json"

    @property
    def ranks_dir(self) -> Path:
        return self.path / "rank"

    def rank_dir(self, tag: str) -> Path:
        """One ranking of subnets against a truth (`rank/<tag>/`, see `nas rank`)."""
        return self.ranks_dir / check_run_name(tag)


def _space_folder(name: str, options: Mapping[str, Any] | None, *rest: str) -> str:
    """`<space>[-KEY=VALUE...]-<rest...>`: the options are sorted so equal ones name alike."""
    extra = "".join(f"-{key}={value}" for key, value in sorted((options or {}).items()))
    return "-".join([f"{name}{extra}", *rest])


def standalone_profile(
    runs_dir: Path, name: str, *, side: int, device: str, options: Mapping[str, Any] | None = None
) -> RunLayout:
    """The folder of a profile made without a run: space name, options, input side, device.

    The side and the options are part of the name because predictors are specific to the
    network they were measured on.
    """
    folder = _space_folder(name, options, f"{side}px", device_dirname(device))
    return RunLayout(Path(runs_dir) / STANDALONE_PROFILES / folder)


def remove_empty_tree(root: Path) -> None:
    """Remove `root` and the folders under it, bottom up, as long as they hold no file."""
    for folder, _, files in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        if not files:
            with contextlib.suppress(OSError):  # not empty after all (a sub-folder kept)
                os.rmdir(folder)


def standalone_rank(
    runs_dir: Path, name: str, *, dataset: str, side: int,
    options: Mapping[str, Any] | None = None,
) -> RunLayout:
    """The folder of rankings made without a run (`nas rank --space ...`): space name,
    options, dataset and input side, since training-free scores depend on all four."""
    folder = _space_folder(name, options, device_dirname(dataset), f"{side}px")
    return RunLayout(Path(runs_dir) / STANDALONE_RANKS / folder)


class RunDir(RunLayout):
    """One run folder: every stage reads and writes its artifacts through this.

    Args:
        root: the runs folder (`runs/` by default).
        name: the run's name; the folder is `root/name`.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root)
        self.name = check_run_name(name)
        super().__init__(self.root / name)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def require(self) -> RunDir:
        """Self, or `ArtifactError` telling how to create the run."""
        if not self.exists():
            known = ", ".join(list_run_names(self.root)[:10]) or "none"
            raise ArtifactError(
                f"run '{self.name}' not found in {self.root} (runs there: {known}); "
                "create it with `nas train-supernet --run NAME` or pass --runs-dir"
            )
        return self

    def manifest(self) -> dict[str, Any]:
        data = read_json(self.manifest_path)
        if not isinstance(data, dict):
            raise ArtifactError(f"{self.manifest_path}: expected a JSON object")
        return data

    @contextlib.contextmanager
    def kept_only_if_used(self) -> Iterator[None]:
        """A run folder the block creates is removed when the block fails before writing any
        file into it: a failed command leaves no empty run behind."""
        existed = self.path.exists()
        try:
            yield
        except BaseException:
            if not existed and self.path.is_dir():
                remove_empty_tree(self.path)
            raise

    def sub(self, *parts: str) -> Path:
        """A path inside the run (parent folders are created)."""
        path = self.path.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def begin_stage(
        self,
        stage: str,
        *,
        config: Mapping[str, Any],
        seed: int | None = None,
        device: str | None = None,
        argv: list[str] | None = None,
    ) -> None:
        """Record that `stage` starts, with its resolved config, seed and environment.

        Also writes `config/<stage>.json`, the resolved config on its own.
        """
        manifest: dict[str, Any] = (
            self.manifest() if self.exists() else {"name": self.name, "created": now_iso()}
        )
        stages: dict[str, Any] = manifest.setdefault("stages", {})
        previous = stages.get(stage, {})
        stages[stage] = {
            "status": "running",
            "started": now_iso(),
            "first_started": previous.get("first_started", previous.get("started", now_iso())),
            "ended": None,
            "command": argv if argv is not None else sys.argv,
            "config": dict(config),
            "seed": seed,
            "device": device,
            "environment": environment(),
            # `stage_status` tells a killed writer's stage from a running one by this
            "writer": {"pid": os.getpid(), "host": socket.gethostname()},
        }
        manifest["updated"] = now_iso()
        atomic_write_json(self.manifest_path, manifest)
        atomic_write_json(self.sub("config", f"{stage}.json"), dict(config))

    def end_stage(
        self, stage: str, *, status: str = "done", summary: Mapping[str, Any] | None = None
    ) -> None:
        manifest = self.manifest()
        entry = manifest.setdefault("stages", {}).setdefault(stage, {})
        entry["status"] = status
        entry["ended"] = now_iso()
        if summary is not None:
            entry["summary"] = dict(summary)
        manifest["updated"] = now_iso()
        atomic_write_json(self.manifest_path, manifest)

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level manifest fields (such as the run's `space` spec)."""
        manifest = self.manifest() if self.exists() else {"name": self.name, "created": now_iso()}
        manifest.update(fields)
        manifest["updated"] = now_iso()
        atomic_write_json(self.manifest_path, manifest)


def list_run_names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())
