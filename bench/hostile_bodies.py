"""What a small compressed request body costs the other clients: a gzip body of about 1 MB
that inflates to 1 GiB, sent to `modelshelf serve` while another client asks
`GET /api/health` every 5 ms.

Run from the repository root (under the shared lock, as every timed run):

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/hostile_bodies.py [--src DIR]

It prints the body's answer, the health probe's longest wait before the body and from the
body to 3 s after it, and the server's CPU time. `--src DIR` serves another source tree
(PYTHONPATH=DIR), e.g. the code before such bodies were refused unread, as the reference.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import start_modelshelf, stop

INFLATED = 1 << 30


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(port: int, waits: list[float], done: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    while not done.is_set():
        began = time.perf_counter()
        conn.request("GET", "/api/health")
        conn.getresponse().read()
        waits.append((time.perf_counter() - began) * 1000)
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="serve this source tree (PYTHONPATH)")
    args = parser.parse_args()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(INFLATED)) + packer.flush()
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_modelshelf(Path(tmp) / "data", args.src, Path(tmp) / "server.log")
        port = int(url.rsplit(":", 1)[1])
        try:
            waits: list[float] = []
            done = threading.Event()
            prober = threading.Thread(target=probe, args=(port, waits, done))
            prober.start()
            time.sleep(0.5)
            quiet = len(waits)
            cpu = cpu_seconds(process.pid)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            conn.request("POST", "/api/tags", body=bomb, headers=headers)
            answer = conn.getresponse()
            print(f"body: {len(bomb):,} bytes of gzip, {INFLATED:,} inflated")
            print(f"answer: {answer.status} {answer.read()[:120]!r}")
            time.sleep(3)
            done.set()
            prober.join()
            used = cpu_seconds(process.pid) - cpu
        finally:
            stop(process)
    before, after = waits[:quiet], waits[quiet:]
    print(f"health before the body: {len(before)} answers, longest {max(before):.1f} ms")
    print(
        f"health from the body to 3 s after: {len(after)} answers, longest {max(after):.1f} ms,"
        f" p50 {statistics.median(after):.1f} ms"
    )
    print(f"server CPU from the body on: {used:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
