"""The edges of HTTP that only a real server process shows (the test server cancels handlers
when a client goes away; the service does not): clients hanging up mid-request."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import time
import urllib.request
import zlib
from http import HTTPStatus
from pathlib import Path

import pytest

from tests.server import ServerProcess

pytestmark = pytest.mark.slow

BOUNDARY = "edge-boundary"
REQUESTS = {
    "mid-upload": (
        "/api/images/upload",
        f"multipart/form-data; boundary={BOUNDARY}",
        f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'
        + b"\x89PNG\r\n\x1a\n"
        + b"x" * 100_000,
    ),
    "mid-field": (
        "/api/images/upload",
        f"multipart/form-data; boundary={BOUNDARY}",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\nabc'.encode(),
    ),
    "mid-json": ("/api/migration/import_a_model", "application/json", b'{"id": '),
}


def hang_up_after(port: int, path: str, content_type: str, sent: bytes) -> None:
    """Send part of a request that announces more, then reset the connection, as a client
    killed mid-upload does."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: 10000000\r\n\r\n".encode()
            + sent
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def wait_for_log(server: ServerProcess, text: str, count: int, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_path.read_text(errors="replace")
        if log.count(text) >= count:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged {count} times: {server.log()}")


def test_clients_hanging_up_mid_request_are_logged_as_normal_not_as_errors(
    data_dir: Path, tmp_path: Path
) -> None:
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    try:
        for path, content_type, sent in REQUESTS.values():
            hang_up_after(server.port, path, content_type, sent)
        log = wait_for_log(server, "the client went away", len(REQUESTS))
    finally:
        server.kill()
    assert " ERROR " not in log and "Traceback" not in log, log
    assert '" 500 ' not in log, log
    staging = data_dir / "images" / ".staging"
    assert not any(staging.iterdir())


MALFORMED = {
    "not-http": b"GARBAGE\r\n\r\n",
    "bad-method": b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-header": b"GET /api/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "header-too-long": b"GET /api/health HTTP/1.1\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "header-name-too-long": b"GET /api/health HTTP/1.1\r\nX" + b"a" * 9_000 + b": 1\r\n\r\n",
    "target-too-long": b"GET /api/models?q=" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-chunk": b"POST /api/images/get_sample_imgs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "bad-version": b"GET /api/health HTTP/9.9\r\nHost: x\r\n\r\n",
}
# What is not 400: too long a request target, too long a header.
MALFORMED_STATUS = {"header-too-long": 431, "header-name-too-long": 431, "target-too-long": 414}


def send_raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def test_requests_aiohttp_cannot_parse_get_the_json_error_body(
    data_dir: Path, tmp_path: Path
) -> None:
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    try:
        answers = {name: send_raw(server.port, raw) for name, raw in MALFORMED.items()}
        healthy = send_raw(
            server.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    finally:
        server.kill()
    for name, (status, headers, body) in answers.items():
        assert status == MALFORMED_STATUS.get(name, 400), (name, status, body)
        assert headers["content-type"].startswith("application/json"), (name, headers)
        answer = json.loads(body)
        assert answer["error"] == HTTPStatus(status).phrase, name
        assert answer["detail"].startswith("malformed request"), (name, answer)
        if name in MALFORMED_STATUS:  # said in words, not the parser's quote of the bytes
            assert "longer than 8,19" in answer["detail"], answer
            assert "bytearray" not in answer["detail"] and "aaaa" not in answer["detail"]
    assert healthy[0] == 200
    log = server.log()
    assert " ERROR " not in log and "Traceback" not in log, log


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_server_runs_on_the_configured_event_loop_and_logs_each_request(
    data_dir: Path, tmp_path: Path, loop: str
) -> None:
    server = ServerProcess(data_dir, tmp_path / "server.log", MODELSHELF_EVENT_LOOP=loop)
    server.start()
    try:
        status, _headers, _body = send_raw(
            server.port, b"GET /api/models?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        # Lines are written by a thread: those queued at exit are written before it.
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
    finally:
        server.kill()
    log = server.log_path.read_text()
    assert status == 200
    assert f"(event loop: {loop})" in log
    line = next(x for x in log.splitlines() if "GET /api/models?limit=1" in x)
    # client, request line, status, body bytes, seconds
    assert re.search(
        r'aiohttp\.access: 127\.0\.0\.1 "GET /api/models\?limit=1 HTTP/1\.1" '
        r"200 \d+ \d+\.\d{3}s$",
        line,
    ), line


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_compressed_body_is_refused_unread_not_inflated(data_dir: Path, tmp_path: Path) -> None:
    """1 MB of gzip that inflates to 1 GiB: decoded, it cost the server 2.9-3.5 s of CPU on
    its event loop, every other client waiting (BENCHMARKS.md, hostile bodies)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(1 << 30)) + packer.flush()
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    try:
        assert server.process is not None
        before = cpu_seconds(server.process.pid)
        head = (
            "POST /api/tags HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
        )
        status, headers, body = send_raw(server.port, head.encode() + bomb)
        healthy = send_raw(
            server.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        used = cpu_seconds(server.process.pid) - before
    finally:
        server.kill()
    assert status == 415, body
    assert json.loads(body)["error"] == "Unsupported Media Type"
    assert headers["accept-encoding"] == "identity"
    assert healthy[0] == 200
    assert used < 1.0, f"the server used {used:.2f} s of CPU on a refused body"


def test_the_access_log_names_the_client_a_trusted_proxy_forwards(
    data_dir: Path, tmp_path: Path
) -> None:
    """Behind a trusted proxy the access log names the client the proxy forwards for, as the
    handlers see it: every line named the proxy, and an operator could tell no client apart."""
    env = {"MODELSHELF_TRUSTED_PROXIES": "127.0.0.1"}
    with ServerProcess(data_dir, tmp_path / "server.log", **env) as server:
        request = urllib.request.Request(
            server.url + "/api/health?from=proxy", headers={"X-Forwarded-For": "203.0.113.7"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        line = server.wait_for_line("/api/health?from=proxy")
    assert line.split('"')[0].split()[-1] == "203.0.113.7", line
