"""A real PostgreSQL server for the test session, started in a temporary directory.

The Debian ``postgresql`` server (found with ``pg_config --bindir``) runs as user postgres when the
tests run as root (initdb refuses root), listening on 127.0.0.1 and a private socket directory.
Each test gets its own database from ``postgres_url``; the server is shared. Tests SKIP with a reason
when the server binaries are missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.support.net import free_port


def bindir() -> Path | None:
    """``pg_config --bindir``; else the newest Debian server under /usr/lib/postgresql (no pg_config there)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(Path(out))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    candidates += versions
    return next((p for p in candidates if (p / "initdb").exists() and (p / "pg_ctl").exists()), None)


def as_owner(cmd: list[str]) -> list[str]:
    """Run as user postgres when we are root; as ourselves otherwise."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PostgresServer:
    bin: Path
    data: Path
    port: int
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]), check=True, capture_output=True
        )

    def start(self) -> None:
        opts = f"-k {self.data} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self.ctl("-w", "-l", str(self.data / "server.log"), "start", "-o", opts)

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-m", mode, "stop")

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def running_server(binaries: Path) -> Iterator[PostgresServer]:
    """A fresh server in a temporary directory, stopped and removed afterwards (the tests' and the bench's)."""
    data = Path(tempfile.mkdtemp(prefix="meshxds-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    initdb = [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    subprocess.run(as_owner(initdb), check=True, capture_output=True)
    server = PostgresServer(binaries, data, free_port())
    for _ in range(3):
        server.start()
        try:  # PostgreSQL starts even when the TCP port was taken meanwhile (it still has its socket)
            psycopg.connect(server.url(), connect_timeout=5).close()
            break
        except psycopg.OperationalError:
            server.stop("immediate")
            server.port = free_port()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    binaries = bindir()
    if binaries is None:
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql; .ci/run does it)")
    with running_server(binaries) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL to a fresh database on the session's server."""
    return postgres_server.new_database()
