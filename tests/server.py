"""A real modelshelf server in a child process, for tests about processes (signals, crashes).

Its output is read line by line by a thread that copies it to a log file, so a test can wait for
a line ("pause point ... reached", "crash point ... reached") instead of sleeping; a line written
to its stdin releases a pause point (see modelshelf.crashpoints).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tests.factories import service_environ

_given: set[int] = set()
_giving = threading.Lock()
PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # <linux/capability.h>


def drop_permission_bypass() -> None:
    """Runs in a child before exec: removes the capabilities that bypass file permissions
    from its bounding set, so the program it becomes has them in none of its sets, even as
    uid 0 (as CI runs): a folder with mode 000 is then unreadable to it, as to a user."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def free_port() -> int:
    """A port free now and never handed out before in this test session: servers started at
    once in several threads must not get the same one (a health probe would reach the other)."""
    with _giving:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in _given:
                _given.add(port)
                return port


class ServerProcess:
    """`python -m modelshelf serve` on a free port; `start()` returns once /api/health is ok."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        file_size_limit: int | None = None,
        prefix: str = "",
        unprivileged: bool = False,
        **env: str,
    ) -> None:
        """`file_size_limit`: as `ulimit -f`, in bytes; writing past it fails with EFBIG (what a
        user without mount rights can do to make a disk look full to one process). `prefix`:
        the path_prefix to serve under. `unprivileged`: file permissions hold for it even
        as root (drop_permission_bypass)."""
        self.data_dir = data_dir
        self.prefix = prefix  # the configured path_prefix, where /api/health is served
        self.log_path = log_path
        self.file_size_limit = file_size_limit
        self.unprivileged = unprivileged
        self.port = free_port()
        self.env = {**service_environ(), **env}
        self.process: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._closed = False
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it to answer (after one that ended: its pipes
        are closed first)."""
        if self.process is not None:
            if self.process.poll() is None:
                raise RuntimeError("the server is still running; kill or wait for it first")
            self.close()
        self._lines, self._closed = [], False
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
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=self._before_exec,
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        return self

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Launch and return once /api/health answers. Raises RuntimeError if the process
        exits first."""
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.close()
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}{self.prefix}/api/health", timeout=1
                ) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.02)  # a readiness probe: the process gives no other sign
        raise TimeoutError(f"server did not become healthy: {self.log()}")

    def wait_for_line(self, fragment: str, timeout: float = 30.0) -> str:
        """The first output line containing `fragment`, once it is written. Raises
        AssertionError if the process ends or `timeout` passes first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(fragment in line for line in self._lines) or self._closed, timeout
            )
            lines = [line for line in self._lines if fragment in line]
        if not found or not lines:
            raise AssertionError(f"no line with {fragment!r} from the server: {self.log()}")
        return lines[0]

    def release(self) -> None:
        """Release a pause point (one line on stdin)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.close()

    def close(self) -> None:
        if self.process is None:
            return
        self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self._reader is not None:
            self._reader.join()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def _before_exec(self) -> None:
        if self.unprivileged:
            drop_permission_bypass()
        if self.file_size_limit is not None:
            limit = self.file_size_limit
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails, not the process

    def log(self) -> str:
        with self._changed:
            return "".join(self._lines)[-4000:]

    def _read(self, stream: IO[bytes]) -> None:
        with self.log_path.open("ab") as log:
            for raw in stream:
                log.write(raw)
                log.flush()
                with self._changed:
                    self._lines.append(raw.decode(errors="replace"))
                    self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


def serve_seeded(data_dir: Path, seeding: Coroutine[Any, Any, Any]) -> Iterator[ServerProcess]:
    """A server of `data_dir` once `seeding` has filled it (a fixture's body: `yield from`);
    killed after. The seeding runs on a loop in a thread of its own: a browser test's thread
    already runs Playwright's loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seeding).result()
    server = ServerProcess(data_dir, data_dir.parent / "server.log").start()
    yield server
    server.kill()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class HeldLock:
    """Another process holding a SQLite database's lock: `BEGIN EXCLUSIVE` (or `statements`)
    in a child Python process, held from `__enter__` until `release()` or `__exit__`."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "for statement in sys.argv[2:]:\n"
        "    conn.execute(statement).fetchall()\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )

    def __init__(self, database: Path, *statements: str) -> None:
        self.database = database
        self.statements = statements or ("BEGIN EXCLUSIVE",)
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> HeldLock:
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(self.database), *self.statements],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the child says so once it holds the lock
        if line.strip() != "held":
            self.release()
            raise RuntimeError(f"the lock holder failed: {line!r}")
        return self

    def release(self) -> None:
        """End the child's transaction (closing its stdin lets it exit)."""
        if self.process is not None:
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.close()
            self.process.wait(10)
            self.process.stdout.close()
            self.process = None

    def __exit__(self, *exc_info: object) -> None:
        self.release()
