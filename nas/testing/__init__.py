"""Helpers for tests and benchmarks (as `optuna.testing`): never used by the tool itself."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (for a server or rendezvous started next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
