"""A throw-away PostgreSQL server for tests and benchmarks of studies shared by workers.

`initdb`, `pg_ctl` and `postgres` refuse to run as root, so as root they run as the `postgres`
user (`runuser -u postgres --`), in a temporary data folder that user owns; as anyone else
they run as that user. The server listens on 127.0.0.1 on a free port, trusts local
connections and is stopped (and its folder deleted) on exit.

    with temporary_postgres() as url:   # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        ...
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nas.errors import NasError
from nas.testing import free_port

TOOLS = ("initdb", "pg_ctl", "postgres")


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server's programs off PATH, one folder per major version
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def unavailable() -> str | None:
    """Why no temporary server can start here (a skip reason), or None when one can."""
    missing = [name for name in TOOLS if _tool(name) is None]
    if missing:
        return f"PostgreSQL server programs not found ({', '.join(missing)})"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot start PostgreSQL as another user"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to start PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def temporary_postgres(*, durable: bool = False) -> Iterator[str]:
    """Start a server; yields its SQLAlchemy URL (psycopg 3 driver).

    Args:
        durable: keep fsync and synchronous commits on (a production setting); off by default,
            which makes a test server several times faster at writing.

    Raises:
        NasError: when no server can start here (see `unavailable`) or it fails to start.
    """
    reason = unavailable()
    if reason is not None:
        raise NasError(f"expected a local PostgreSQL installation, got: {reason}")
    root = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    data, port = root / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg_ctl = str(_tool("pg_ctl"))
    try:
        _run([str(_tool("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--no-sync"])
        _run([pg_ctl, "start", "-w", "-t", "60", "-D", str(data), "-l", str(root / "log"),
              "-o", options])
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([pg_ctl, "stop", "-m", "fast", "-w", "-D", str(data)])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise NasError(
            f"expected `{Path(command[0]).name}` to succeed, got exit code {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )
