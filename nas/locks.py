"""One writer per run stage: OS file locks, owners recorded, dead owners detected by PID.

A `StageLock` is held by the process that writes a stage of a run (`supernet`,
`profile-cpu`, `search-TAG`, `export` ...), in `RUN/.locks/KEY.lock`. A second writer of the
same stage is refused with a `BusyError` naming the holder (pid, host, command, since when),
or waits with `wait=True`. `locked(path)` serialises short read-modify-writes (the manifest).

Portability: POSIX systems use `fcntl.flock`, which the kernel drops when the holder dies, so
a kill never leaves a lock behind. On Linux, flock on NFS (since 2.6.12) is emulated with
POSIX byte-range locks and works when the NFS lock manager runs; without it, flock fails and
`BusyError` says so. Windows uses `msvcrt.locking`. A lock can still outlive its owner when
a forked child keeps the descriptor open (a data-loader worker orphaned by a kill): the owner
recorded in the file is then dead on this host, and the stale lock file is replaced.

`Writer` (pid, host, process start time) also tells `nas runs` whether a stage marked
running in the manifest still has a living writer (`writer_alive`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import BusyError

if sys.platform != "win32":
    import fcntl

LOCKS_DIR = ".locks"
POLL_SECONDS = 0.5


def _start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot; Linux), to tell a reused PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after its end
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Writer:
    """A process writing a stage: where it runs and what it runs."""

    pid: int
    host: str
    start: int | None = None
    command: list[str] = field(default_factory=list)
    since: str | None = None

    @classmethod
    def this_process(cls) -> Writer:
        import datetime as dt

        return cls(os.getpid(), socket.gethostname(), _start_time(os.getpid()),
                   [str(a) for a in sys.argv],
                   dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, data: Any) -> Writer | None:
        if not isinstance(data, Mapping):
            return None
        pid, host = data.get("pid"), data.get("host")
        if not isinstance(pid, int) or not isinstance(host, str):
            return None
        start = data.get("start")
        command = data.get("command")
        return cls(pid, host, start if isinstance(start, int) else None,
                   [str(a) for a in command] if isinstance(command, list) else [],
                   str(data["since"]) if data.get("since") else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alive(self) -> bool | None:
        """True/False on this host; None for another host (its PIDs cannot be checked)."""
        if self.host != socket.gethostname():
            return None
        if not pid_alive(self.pid):
            return False
        return self.start is None or _start_time(self.pid) in (None, self.start)

    def describe(self) -> str:
        where = "this machine" if self.host == socket.gethostname() else f"host {self.host}"
        command = " ".join(["nas", *self.command[1:]]) if self.command else "?"
        since = f", since {self.since}" if self.since else ""
        return f"pid {self.pid} on {where} (`{command[:80]}`{since})"


def writer_alive(data: Any) -> bool | None:
    """Whether the writer recorded as `data` (`Writer.to_dict`) lives; None when unknown."""
    writer = Writer.from_dict(data)
    return None if writer is None else writer.alive()


def _try_lock(fd: int, path: Path) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise BusyError(
            f"cannot lock {path} ({exc.strerror}); a network file system without its lock "
            "manager? use a local --runs-dir"
        ) from None
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (a releaser may have removed it)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_owner(path: Path) -> Writer | None:
    try:
        return Writer.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


class StageLock:
    """The lock of one stage of a run (a context manager).

    Args:
        folder: the run folder (or the folder the stage writes).
        key: what is written (`supernet`, `search-TAG` ...), one file name.
        wait: queue behind a living holder instead of failing.
        hint: what to do instead, for the refusal ("use another --tag").
    """

    def __init__(self, folder: Path, key: str, *, wait: bool = False, hint: str = "") -> None:
        self.path = Path(folder) / LOCKS_DIR / f"{key}.lock"
        self.key, self.wait, self.hint = key, wait, hint
        self._fd: int | None = None
        self._made_folder = False

    def acquire(self) -> StageLock:
        self._made_folder = not self.path.parent.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                got = _try_lock(fd, self.path) and _same_file(fd, self.path)
            except BaseException:
                os.close(fd)
                raise
            if got:
                self._fd = fd
                try:
                    self._record(fd)
                except OSError:
                    pass  # a full disk: the lock holds without its owner's description
                return self
            os.close(fd)
            owner = _read_owner(self.path)
            if owner is not None and owner.alive() is False:
                # held by an orphan of a dead owner (a forked child): start a new lock file
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            if not self.wait:
                raise self.busy(owner)
            time.sleep(POLL_SECONDS)

    def busy(self, owner: Writer | None) -> BusyError:
        holder = owner.describe() if owner else "another process"
        hint = f", {self.hint}" if self.hint else ""
        return BusyError(
            f"'{self.key}' of {self.path.parent.parent} is being written by {holder}; "
            f"wait for it to finish (or pass --wait to queue behind it){hint}"
        )

    def _record(self, fd: int) -> None:
        data = json.dumps(Writer.this_process().to_dict()).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        # removed while still held: a waiter that opened the old file sees it is gone
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None
        # a stage refused before writing anything leaves no folder made only for its lock
        # (another stage's lock file keeps them)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()
            if self._made_folder:
                self.path.parent.parent.rmdir()

    def __enter__(self) -> StageLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def stage_lock(
    folder: Path, key: str, *, wait: bool = False, hint: str = "", enabled: bool = True
) -> Iterator[None]:
    """Hold `key`'s lock of `folder` for the body (`enabled=False`: no lock, e.g. DDP ranks
    other than 0, or searches whose study several processes share)."""
    if not enabled:
        yield
        return
    with StageLock(folder, key, wait=wait, hint=hint):
        yield


@contextlib.contextmanager
def locked(path: Path, *, fd: int | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` for a short read-modify-write; waits for it.

    `fd`: lock this open descriptor of `path` (unlocked, not closed, at the end); else the
    file is opened (and created) here.
    """
    own = fd is None
    if fd is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        while not _try_lock(fd, path):
            time.sleep(0.01)
        yield
    finally:
        if own:
            os.close(fd)  # closing drops the lock
        else:
            _unlock(fd)


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)
