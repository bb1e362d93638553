"""A real modelshelf server in a child process, for tests about processes (signals, crashes)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.factories import environ_without_modelshelf


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`python -m modelshelf serve` on a free port; `start()` returns once /api/health is ok."""

    def __init__(self, data_dir: Path, log_path: Path, prefix: str = "", **env: str) -> None:
        self.data_dir = data_dir
        self.prefix = prefix  # the configured path_prefix, where /api/health is served
        self.log_path = log_path
        self.port = free_port()
        self.env = {**environ_without_modelshelf(), **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelshelf",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--config-dir",
                str(self.data_dir / "no-config"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}{self.prefix}/api/health", timeout=1
                ) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"server did not become healthy: {self.log()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
