"""A throw-away PostgreSQL cluster for the tests: ``initdb`` in a temp dir, ``postgres`` on a free local port,
one fresh database per test, stopped and removed at the end. Nothing is assumed running.

The server binaries are Debian's (``/usr/lib/postgresql/N/bin``, or KEFU_TEST_PG_BIN). initdb and postgres
refuse to run as root: as root, the cluster runs as the ``postgres`` user in a temp dir it owns."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SETUP = "run `bash scripts/setup-scale.sh` (`make test` does)"
START_TIMEOUT_S = 30


def require_driver() -> None:
    """Fail (never skip) a PostgreSQL test when the driver is missing: the suite installs it."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing = True
    else:
        missing = False
    if missing:  # failed outside the except, so the message stands alone
        pytest.fail(f"psycopg (the PostgreSQL driver, the scale extra) is not installed: {SETUP}.", pytrace=False)


def server_bin() -> Path:
    candidates = [os.environ.get("KEFU_TEST_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if found := shutil.which("initdb"):
        candidates.append(str(Path(found).parent))
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    pytest.fail("PostgreSQL's server (initdb, postgres) is not installed: run `bash scripts/postgres.sh` (`make test` "
                "does), or KEFU_TEST_PG_BIN names its bin folder.", pytrace=False)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_bin()
        self.user = "postgres" if os.geteuid() == 0 else None  # the server never runs as root
        self.dir = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
        if self.user is not None:
            owner = pwd.getpwnam(self.user)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._names = itertools.count(1)
        self._run(["initdb", "-D", str(self.data), "-U", "kefu", "--auth=trust", "--encoding=UTF8",
                   "--locale=C.UTF-8", "--no-sync"])  # fmt: skip

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run([str(self.bin / argv[0]), *argv[1:]], user=self.user, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}")

    @property
    def url(self) -> str:
        return f"postgresql://kefu@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        """Start the server (again: on the port it had)."""
        self.port = self.port or free_port()
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 (the server writes it until it stops)
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            user=self.user, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"the test PostgreSQL server did not start:\n{log}") from None
                time.sleep(0.05)

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"records_{next(self._names)}"
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return f"postgresql://kefu@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Fast shutdown (clients disconnected); the cluster's files stay until ``remove``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
