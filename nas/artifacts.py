"""Run folders (`runs/<name>/`), their layout, and atomic artifact writes.

`RunLayout` is the one place that names the folders of a run's stages (`profile/<device>/`,
`predictor/<device>/`, `search/<tag>/`, `export/<arch_id>/`, `train/`, `rank/<tag>/`) and of
devices; `RunDir` adds the manifest. A profile made without a run (`nas profile --space ...`)
keeps the same tree in `runs/_profiles/<space>[-KEY=VALUE...]-<side>px-<device>/`
(`standalone_profile`); a ranking made without a run (`nas rank --space ...`) goes to
`runs/_rank/<space>[-KEY=VALUE...]-<dataset>-<side>px/rank/<tag>/` (`standalone_rank`).

Every file is written to a temporary sibling and renamed into place, so a run killed at any
moment leaves either the old or the new version of a file, never half of one. Append-only logs
(`*.jsonl`) are flushed per line; readers skip a torn last line, and the next append cuts it
off first, so a kill or a full disk mid-append never leaves a broken line mid-file. Files get
the usual mode (0644 under the usual umask), so a shared runs folder stays readable. A write
that fails for want of space or permission raises `WriteError` saying what was kept.

Reading goes through `nas.readers` (every failure one `ArtifactError` line); names that
become folders are checked by `nas.names`; the manifest's read-modify-write holds a lock
(`nas.locks`), so concurrent stages of one run never lose each other's records.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nas.artifact_kinds import MANIFEST as MANIFEST_KIND
from nas.errors import ArtifactError, WriteError
from nas.locks import LOCKS_DIR, Writer, locked, writer_alive
from nas.names import check_name, options_label
from nas.names import device_dirname as device_dirname
from nas.readers import UNKNOWN, Kind, iter_jsonl, load_json

MANIFEST = "manifest.json"
STANDALONE_PROFILES = "_profiles"
STANDALONE_RANKS = "_rank"

# why a write failed, for errors the user can fix; other OSErrors keep their traceback
_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def write_failure(exc: BaseException) -> str | None:
    """Why a write failed, when the user can fix it (disk full, read-only, permissions)."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_FAILURES:
        return _WRITE_FAILURES[exc.errno]
    return None


# how libraries that write on their own (SQLite, torch's zip writer) say the same
_LIBRARY_FAILURES = {
    "database or disk is full": "the disk is full",
    "file write failed": "the disk is full",
    "attempt to write a readonly database": "the file system is read-only",
    "no space left on device": "the disk is full",
    "read-only file system": "the file system is read-only",
}


def disk_failure(exc: BaseException) -> str | None:
    """One line for an error that means the disk refused a write (full, read-only, no
    permission), found anywhere in `exc`'s chain; None for any other error.

    For errors raised outside `nas.artifacts`' writers (SQLite studies, library writers):
    every write of this package is atomic, so what was written before is kept.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = write_failure(current)
        text = str(current).lower()
        reason = reason or next((r for k, r in _LIBRARY_FAILURES.items() if k in text), None)
        if reason is not None:
            where = getattr(current, "filename", None)
            return (f"{reason}{f' ({where})' if where else ''}; files written before are "
                    "kept (every write is atomic); free space or fix the permissions, then run "
                    "the command again")
        current = current.__cause__ or current.__context__
    return None


def _write_error(path: Path, reason: str, kept: str) -> WriteError:
    return WriteError(f"could not write {path}: {reason}; {kept}; free space (or fix the "
                      "permissions) and run the command again")


def _kept(path: Path) -> str:
    return ("its previous version is kept" if path.exists()
            else "nothing was written in its place")


def _out_of_space(folder: Path) -> bool:
    """Whether `folder`'s file system is (nearly) full: library writers (torch.save) report
    a full disk as a RuntimeError without an errno."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def file_mode() -> int:
    """The mode of new files: 0666 minus the umask (mkstemp alone gives 0600)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it back at once
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def _temp_sibling(path: Path) -> Iterator[str]:
    """A temporary file beside `path` (removed unless renamed); disk errors as `WriteError`."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, file_mode())
        yield tmp
    except OSError as exc:
        reason = write_failure(exc)
        if reason is None:
            raise
        raise _write_error(path, reason, _kept(path)) from None
    except RuntimeError:
        if not _out_of_space(path.parent):
            raise
        raise _write_error(path, _WRITE_FAILURES[errno.ENOSPC], _kept(path)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file + fsync + rename."""
    with _temp_sibling(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def json_ready(obj: Any) -> Any:
    """`obj` with NaN and infinities as null: JSON has no spelling for them, and a file that
    only Python can read back is no JSON file (readers take null as "no value")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: json_ready(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(value) for value in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(json_ready(obj), indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def atomic_save_with(path: Path, save: Any) -> None:
    """Atomically write a file produced by a library writer, `save(tmp_path)`.

    Used for `torch.save` and `safetensors` writers, which want a path of their own.
    """
    with _temp_sibling(path) as tmp:
        save(tmp)
        os.chmod(tmp, file_mode())  # some writers replace the file they were given
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def _cut_torn_tail(fd: int) -> int:
    """Cut a last line without its newline (a kill or a full disk mid-append) off the file
    open as `fd`; returns the new size. Readers skipped that line already."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - 4096)
        chunk = os.pread(fd, end - start, start)
        if end == size and chunk.endswith(b"\n"):
            return size
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    os.ftruncate(fd, end)
    return end


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line, after cutting off a torn last line left by an earlier append.

    The file is locked meanwhile (two appenders never see each other's half line as torn),
    and a failed write is rolled back, so the file always ends in a whole line.
    """
    line = (json.dumps(json_ready(record), sort_keys=True, default=str, allow_nan=False)
            + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    except OSError as exc:
        reason = write_failure(exc)
        if reason is None:
            raise
        raise _write_error(path, reason, _kept(path)) from None
    try:
        with locked(path, fd=fd):
            size = _cut_torn_tail(fd)
            try:
                written = 0
                while written < len(line):
                    written += os.write(fd, line[written:])
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # no half line left behind
                reason = write_failure(exc)
                if reason is None:
                    raise
                raise _write_error(path, reason, "its earlier lines are kept") from None
    finally:
        os.close(fd)


def read_jsonl(path: Path, kind: Kind = UNKNOWN) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, skipping blank lines and a torn last line (`nas.readers`)."""
    return iter_jsonl(path, kind)


def read_json(path: Path, kind: Kind = UNKNOWN) -> Any:
    """A JSON file checked against `kind`'s shape; any damage is one `ArtifactError`."""
    return load_json(path, kind)


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


def check_run_name(name: str) -> str:
    return check_name(name, "run name")


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
        return self.searches_dir / check_name(tag, "--tag")

    @property
    def exports_dir(self) -> Path:
        return self.path / "export"

    def export_dir(self, arch_id: str) -> Path:
        """One exported subnet (`export/<arch_id>/`)."""
        return self.exports_dir / check_name(arch_id, "arch id")

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
    """`<space>[-KEY=VALUE...]-<rest...>`: the options are sorted so equal ones name alike
    (`nas.names.options_label`: long or unusual ones become a hash)."""
    return "-".join([f"{check_name(name, '--space')}{options_label(options or {})}", *rest])


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
        data: dict[str, Any] = read_json(self.manifest_path, MANIFEST_KIND)
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

    def edit_manifest(self, edit: Callable[[dict[str, Any]], None]) -> None:
        """Read, `edit` and write the manifest under its lock (one writer at a time, so
        stages recorded by concurrent processes are all kept); a damaged manifest is never
        overwritten (`ArtifactError`)."""
        with locked(self.path / LOCKS_DIR / "manifest.lock"):
            manifest = (self.manifest() if self.exists()
                        else {"name": self.name, "created": now_iso()})
            edit(manifest)
            manifest["updated"] = now_iso()
            atomic_write_json(self.manifest_path, manifest)

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

        Also writes `config/<stage>.json`, the resolved config on its own. The stage records
        its writer (pid, host), so a stage whose writer died shows as interrupted
        (`stage_status`).
        """
        check_name(stage, "stage name")
        writer = Writer.this_process()

        def edit(manifest: dict[str, Any]) -> None:
            stages: dict[str, Any] = manifest.setdefault("stages", {})
            previous = stages.get(stage, {})
            stages[stage] = {
                "status": "running",
                "started": now_iso(),
                "first_started": previous.get("first_started",
                                              previous.get("started", now_iso())),
                "ended": None,
                "command": argv if argv is not None else sys.argv,
                "config": dict(config),
                "seed": seed,
                "device": device,
                "environment": environment(),
                "writer": {"pid": writer.pid, "host": writer.host, "start": writer.start},
            }

        self.edit_manifest(edit)
        atomic_write_json(self.sub("config", f"{stage}.json"), dict(config))

    def end_stage(
        self, stage: str, *, status: str = "done", summary: Mapping[str, Any] | None = None
    ) -> None:
        def edit(manifest: dict[str, Any]) -> None:
            entry = manifest.setdefault("stages", {}).setdefault(stage, {})
            entry["status"] = status
            entry["ended"] = now_iso()
            if summary is not None:
                entry["summary"] = dict(summary)

        self.edit_manifest(edit)

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level manifest fields (such as the run's `space` spec)."""
        self.edit_manifest(lambda manifest: manifest.update(fields))


def stage_status(entry: Mapping[str, Any]) -> str:
    """A stage's status as `nas runs` shows it: "running" only while its writer lives
    ("interrupted" once it died without ending the stage; a writer on another host is
    taken at its word)."""
    status = str(entry.get("status", "?"))
    if status == "running" and writer_alive(entry.get("writer")) is False:
        return "interrupted"
    return status


def list_run_names(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())
