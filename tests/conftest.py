"""Shared test set-up: no network, a private data cache, a non-interactive plotting backend."""

import os
import socket
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_data_cache(tmp_path_factory, monkeypatch):
    """Point COURSE_TOOLS_DATA at a temporary folder so tests never read a user's cache."""
    monkeypatch.setenv("COURSE_TOOLS_DATA", str(tmp_path_factory.getbasetemp() / "data_cache"))


class _NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Fail loudly if a test tries to open a network connection (loopback is allowed)."""
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (
            host.startswith("127.") or host in {"localhost", "::1"} or sock.family == socket.AF_UNIX
        ):
            return real_connect(sock, address)
        raise _NetworkBlocked(f"Tests must not touch the network (tried to connect to {address}).")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
