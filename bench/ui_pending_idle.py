"""What an idle Pending page costs the server while its tab is visible: the requests it makes
and the bytes it receives in a minute (its looks for batch imports started elsewhere, and at
the queue for models added or taken elsewhere).

Run from the repository root:

    .venv/bin/python bench/ui_pending_idle.py [--ended 50] [--seconds 60]

It seeds the browser tests' library (tests/ui/seed.py), runs `--ended` batch imports (of an id
no longer pending: each ends at once, `not_found`) so the jobs list is as long as it gets (the
last 50 ended), starts `modelshelf serve` as a separate process and opens /pending in Debian's
Chromium. Once the page has settled (5 s), it counts for `--seconds` every request the page
makes and the bytes received for each (Chrome's encodedDataLength: headers and body as sent;
for a 304 the page asked for itself, the headers responseReceived counted).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright
from tests.server import ServerProcess
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser
from tests.ui.seed import seed_library


def run_batches(url: str, count: int) -> None:
    """`count` batch imports that end at once (their one id is not pending)."""
    for _ in range(count):
        body = json.dumps({"ids": [999_999], "conf_strategy": None}).encode()
        request = urllib.request.Request(
            f"{url}/api/migration/import_models",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as answer:
            answer.read()


def measure(url: str, seconds: float) -> tuple[Counter[str], Counter[str]]:
    """Requests and bytes received per path while /pending sits idle and visible."""
    requests: Counter[str] = Counter()
    received: Counter[str] = Counter()
    paths: dict[str, str] = {}
    counted: list[str] = []
    # What came for each request: loadingFinished's count, but a 304 the page itself asked for
    # (If-None-Match) reports 0 there or never ends there: its headers, as responseReceived
    # counted them, are what came.
    heads: dict[str, int] = {}
    ends: dict[str, int] = {}
    counting = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")

        def sent(event: dict[str, Any]) -> None:
            path = event["request"]["url"].removeprefix(url)
            paths[event["requestId"]] = path
            if counting:
                requests[path] += 1
                counted.append(event["requestId"])

        def headers_in(event: dict[str, Any]) -> None:
            heads[event["requestId"]] = int(event["response"].get("encodedDataLength", 0))

        def finished(event: dict[str, Any]) -> None:
            ends[event["requestId"]] = int(event["encodedDataLength"])

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.responseReceived", headers_in)
        cdp.on("Network.loadingFinished", finished)
        page.goto(f"{url}/pending")
        page.locator(".queue > li").first.wait_for()
        page.wait_for_timeout(5000)
        counting = True
        page.wait_for_timeout(seconds * 1000)
        counting = False
        browser.close()
    for request_id in counted:
        received[paths[request_id]] += max(ends.get(request_id, 0), heads.get(request_id, 0))
    return requests, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ended", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        library = seed_library(Path(tmp))
        with ServerProcess(library.data_dir, Path(tmp) / "server.log") as server:
            run_batches(server.url, args.ended)
            time.sleep(1)  # the last of them ends
            requests, received = measure(server.url, args.seconds)
    per_minute = 60 / args.seconds
    for path in sorted(requests):
        print(
            f"{path}: {requests[path] * per_minute:.1f} requests/min,"
            f" {received[path] * per_minute / 1024:.1f} KiB/min received"
        )
    total_requests = sum(requests.values()) * per_minute
    total = sum(received.values()) * per_minute / 1024
    print(f"all: {total_requests:.1f} requests/min, {total:.1f} KiB/min received")


if __name__ == "__main__":
    main()
