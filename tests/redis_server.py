"""A throw-away Redis for the tests: Debian's redis-server (``make test`` installs it: scripts/redis.sh) on a free
loopback port, no persistence, started and stopped by the test that needs it; nothing is assumed running."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port


class RedisServer:
    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("Debian's redis-server is missing: `make test` installs it (bash scripts/redis.sh)")
        self.binary, self.folder, self.port = binary, folder, port or free_port()
        self.pidfile = folder / f"redis-{self.port}.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                        "no", "--daemonize", "yes", "--pidfile", str(self.pidfile), "--dir", str(self.folder)],
                       check=True, capture_output=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop it (and wait until the port is free), as a crash or an operator would."""
        if not self.pidfile.exists():
            return
        pid = int(self.pidfile.read_text())
        subprocess.run(["kill", str(pid)], check=False)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)
