"""`torchrun` jobs for tests and benchmarks: the launcher beside this Python, a free rendezvous
port, one thread per worker and each rank's output in files of its own.

    command = torchrun_command("-m", "nas", "--", "train-supernet", ..., log_dir=logs)
    subprocess.run(command, env=worker_env(), ...)
    stdout, stderr = rank_output(logs, rank=1)
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

from nas.errors import NasError
from nas.testing import free_port


def torchrun_path() -> str | None:
    """The `torchrun` of this environment (beside `sys.executable`, else on PATH)."""
    beside = Path(sys.executable).with_name("torchrun")
    return str(beside) if beside.is_file() else shutil.which("torchrun")


def torchrun_command(*program: str, nproc: int = 2, log_dir: Path | None = None) -> list[str]:
    """`torchrun` starting `nproc` copies of `program` on this machine.

    Args:
        program: what torchrun runs and its arguments ("-m", "nas", "--", "train-supernet" ...).
        nproc: processes (ranks).
        log_dir: each rank's stdout and stderr go to files under it (`rank_output`) instead
            of torchrun's own output.
    """
    launcher = torchrun_path()
    if launcher is None:
        raise NasError("expected torchrun (installed with torch), found none beside "
                       f"{sys.executable} or on PATH")
    command = [launcher, "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
               "--master-port", str(free_port())]
    if log_dir is not None:
        command += ["--log-dir", str(log_dir), "--redirects", "3"]
    return [*command, *program]


def worker_env(**extra: str) -> dict[str, str]:
    """This environment with one thread per worker: ranks share the machine's cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def rank_output(log_dir: Path, rank: int) -> tuple[str, str]:
    """(stdout, stderr) of `rank` in the last job logged under `log_dir`."""
    found = sorted(log_dir.glob(f"*/attempt_*/{rank}/stdout.log"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise NasError(f"expected rank {rank}'s output under {log_dir}, found none")
    folder = found[-1].parent
    return (folder / "stdout.log").read_text(), (folder / "stderr.log").read_text()


def worker_pid(launcher_pid: int, rank: int) -> int | None:
    """The process id of `rank` among the workers `launcher_pid` started (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent != launcher_pid:
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):  # the process ended meanwhile
            continue
        if f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    return None


def kill_worker(launcher_pid: int, rank: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to one worker of a torchrun job (as a crash or the OOM killer would)."""
    pid = worker_pid(launcher_pid, rank)
    if pid is None:
        raise NasError(f"expected a worker of rank {rank} under process {launcher_pid}, "
                       "found none")
    os.kill(pid, sig)


__all__ = ["kill_worker", "rank_output", "torchrun_command", "torchrun_path", "worker_env",
           "worker_pid"]
