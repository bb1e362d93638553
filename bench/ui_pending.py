"""The Pending page with 5,000 pending models, measured in a real browser (Debian's Chromium).

Run from the repository root (under the shared lock, as every timed run):

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/ui_pending.py \
        [--pending 5000] [--small 100] [--calls 30] [--loads 3] [--src DIR]

It seeds a data directory through the storage layer (one change: pending rows with tags,
library models, hash cache entries, the pending originals' index): every pending model has a
model file on disk (64 bytes of its own) but one in 25, whose file is missing; one in 16 has
a file whose cached digest is a library model's (a conflict), one in 10 was never hashed
(its group unknown), the rest are fresh; nine in ten have an original image, hard links to
six 768x1024 JPEGs rendered once with pyvips. It starts `modelshelf serve` on it as a separate
process and measures:

  server  p50/p99 of `GET /api/migration/pending_models`, with `?checks=true` (what the
          page asks) and without;
  load    (a fresh browser context each, `--loads` times, the median) ms from navigation to:
          the list's answer, the first rows in the page, the frame after them; a click on the
          Conflicts chip issued as soon as rows appear, answered (its frame drawn); the long
          tasks (over 50 ms) until then, their sum beyond 50 ms each (blocking time) and the
          longest; then rows in the page, rows on screen, image requests of the first screen;
  clicks  the All chip, Select all (checked and unchecked): ms from the click's event to the
          frame after it;
  scroll  frame times scrolling 3,000 px at 30 px a frame, then through the whole list at
          400 px a frame; image requests made and rows in the page at the end.

The same is measured on a queue of `--small` pending models (the reference: the page as a
person with a small queue has it), and, with `--src DIR`, on 5,000 served by another source
tree (PYTHONPATH=DIR: e.g. `git archive <commit> src | tar -x -C /tmp/old`, then
`--src /tmp/old/src`), whose UI is that tree's too. Ratios are printed against both.
Nothing is imported or discarded: every run sees the same queue.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser

from figures import machine, percentile, write_gradient_picture
from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.storage import hash_cache, models, pending, tags
from modelshelf.web.keys import SHELF
from serving import start_modelshelf, stop

TYPES = ("lora", "lora", "checkpoint", "embedding", "lora", "vae")
WORDS = ("aurora", "lineart", "watercolor", "cyberpunk", "portrait", "ghibli", "neon", "ink")
SOURCES = 6


def group_of(i: int) -> str:
    if i % 25 == 0:
        return "missing"
    if i % 16 == 1:
        return "conflict"
    return "unknown" if i % 10 == 7 else "fresh"


def library_sha(i: int) -> str:
    return hashlib.sha256(f"pending-bench-library-{i}".encode()).hexdigest()


def render_sources(folder: Path) -> list[Path]:
    """Six real originals (768x1024 JPEG gradients), rendered once."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(SOURCES):
        paths.append(write_gradient_picture(folder / f"s{n}.jpg", n))
    return paths


def model_files(folder: Path, count: int) -> dict[int, tuple[Path, str, os.stat_result | None]]:
    """Each pending model's file (none for the missing ones), its SHA256 and its stat."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for i in range(1, count + 1):
        path = folder / f"{WORDS[i % len(WORDS)]}_{i:05d}.safetensors"
        content = f"pending-bench-file-{i}".encode().ljust(64, b".")
        st = None
        if group_of(i) != "missing":
            path.write_bytes(content)
            st = path.stat()
        files[i] = (path, hashlib.sha256(content).hexdigest(), st)
    return files


async def seed(data_dir: Path, count: int, sources: list[Path]) -> None:
    """Rows through the storage layer, in one change (the unit of work); the originals as
    stage 1 leaves them, at images/pending/<id>.jpg."""
    files = model_files(data_dir.parent / f"model-files-{count}", count)
    settings = Settings(data_dir=data_dir, port=0).resolve_paths()
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    shelf = runner.app[SHELF]
    originals = data_dir / "images" / "pending"
    originals.mkdir(parents=True, exist_ok=True)
    try:
        async with shelf.changes.change() as change:
            tag_ids = [await tags.insert_tag(change.tx, w) for w in WORDS]
            for i, file in files.items():
                await seed_one(change.tx, i, file, tag_ids)
                if i % 10 != 3:
                    os.link(sources[i % SOURCES], originals / f"{i}.jpg")
                    await pending.set_pending_image(change.tx, i, "jpg")
    finally:
        await runner.cleanup()


async def seed_one(
    tx: Any, i: int, file: tuple[Path, str, os.stat_result | None], tag_ids: list[int]
) -> None:
    path, digest, st = file
    kind, word = TYPES[i % len(TYPES)], WORDS[i % len(WORDS)]
    fields = {
        "path": str(path),
        "name": f"{word.title()} {kind} {i:05d}",
        "type": kind,
        "size_bytes": 20_000_000 + 7919 * i,
        "created_at": 1_600_000_000_000 + i * 60_000,
        "meta_json": {"description": f"A {kind} for {word} pictures.", "base_model": "SD 1.5"},
    }
    await pending.insert_pending(tx, i, None, fields, [tag_ids[i % 8], tag_ids[(i // 8) % 8]])
    group = group_of(i)
    if group == "conflict":
        digest = library_sha(i)
        await models.insert_model(tx, digest, {**fields, "name": f"Library {word} {i:05d}"})
    if st is not None and group in ("conflict", "fresh"):
        await hash_cache.store_digest(tx, str(path), st.st_size, st.st_mtime_ns, st.st_ino, digest)


def server_times(url: str, calls: int) -> dict[str, tuple[float, float, int]]:
    """p50/p99 in ms, and the answer's bytes."""
    figures = {}
    for path in ("/api/migration/pending_models?checks=true", "/api/migration/pending_models"):
        samples, size = [], 0
        for _ in range(calls):
            began = time.perf_counter()
            with urllib.request.urlopen(url + path) as response:
                size = len(response.read())
            samples.append((time.perf_counter() - began) * 1000)
        figures[path] = (percentile(samples, 50), percentile(samples, 99), size)
    return figures


# Installed before the page's own scripts.
PROBE = """
performance.setResourceTimingBufferSize(100000);
window.__marks = {}; window.__clicks = []; window.__long = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) __long.push([e.startTime, e.duration]);
}).observe({type: 'longtask', buffered: true});
new MutationObserver(() => {
  if (!__marks.rows && document.querySelector('.queue > li')) {
    __marks.rows = performance.now();
    requestAnimationFrame(() => setTimeout(() => { __marks.painted = performance.now(); }));
  }
}).observe(document, {subtree: true, childList: true});
document.addEventListener('click', (e) => {
  const at = e.timeStamp;
  const what = (e.target.id || e.target.textContent || '').trim();
  requestAnimationFrame(() => setTimeout(() => {
    __clicks.push({what, at, answered: performance.now() - at, end: performance.now()});
  }));
}, true);
"""

SCROLL = """async ([step, limit]) => {
  const frames = []; let last = performance.now(); let y = 0;
  scrollTo(0, 0);
  for (let i = 0; i < 20000; i++) {
    const end = Math.min(limit, document.documentElement.scrollHeight - innerHeight);
    if (y > end) break;
    scrollTo(0, y); y += step;
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); frames.push(now - last); last = now;
  }
  frames.sort((a, b) => a - b);
  const pct = (p) => frames[Math.min(frames.length - 1, Math.floor(frames.length * p))];
  return {frames: frames.length, p50: pct(0.5), p95: pct(0.95), max: frames[frames.length - 1],
          long: frames.filter(f => f > 50).length};
}"""

# CSS, not roles: finding a role among thousands of rows is Playwright's own slow work.
CHIP = 'button.chip[data-label="%s"]'
ON_SCREEN = """() => [...document.querySelectorAll('.queue > li')].filter(r => {
  const b = r.getBoundingClientRect(); return b.height && b.bottom > 0 && b.top < innerHeight;
}).length"""


def images(requests: list[str]) -> int:
    return len([u for u in requests if "/api/images/pending/" in u])


def probed_page(browser: Any) -> tuple[Any, Any, list[str]]:
    """A fresh context and page carrying PROBE, and the URLs the page will request."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(PROBE)
    return context, page, requests


def one_load(browser: Any, url: str) -> dict[str, Any]:
    """A fresh context: navigation to rows and to a chip's click answered."""
    context, page, requests = probed_page(browser)
    page.goto(url + "/pending", wait_until="commit")
    page.locator(".queue > li").first.wait_for(state="attached", timeout=120_000)
    page.locator(CHIP % "Conflicts").click(timeout=120_000)
    page.wait_for_function("() => __clicks.length >= 1", timeout=120_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    out = page.evaluate("""() => {
      const answer = performance.getEntriesByType('resource')
        .find(e => e.name.includes('pending_models')).responseEnd;
      const until = __clicks[0].end;
      const long = __long.filter(([s]) => s < until);
      return {answer, rows: __marks.rows, painted: __marks.painted,
              chip_answered: until, chip_latency: __clicks[0].answered,
              long_tasks: long.length, blocking: long.reduce((t, [, d]) => t + d - 50, 0),
              longest: Math.max(0, ...long.map(([, d]) => d))};
    }""")
    out["first_screen_images"] = images(requests)
    context.close()
    return out


def clicks_and_scroll(browser: Any, url: str) -> dict[str, Any]:
    context, page, requests = probed_page(browser)
    page.goto(url + "/pending")
    page.locator(".queue > li").first.wait_for(timeout=120_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    out: dict[str, Any] = {
        "rows_in_page": page.locator(".queue > li").count(),
        "rows_on_screen": page.evaluate(ON_SCREEN),
        "image_requests": images(requests),
    }
    steps = [
        ("Conflicts chip", page.locator(CHIP % "Conflicts")),
        ("All chip", page.locator(CHIP % "All")),
    ]
    select_all = page.locator("#select-all")
    for label, control in steps:
        control.click()
        out[label] = last_click(page)
    out["selected_text"] = ""
    for label in ("Select all (check)", "Select all (uncheck)"):
        select_all.click()
        out[label] = last_click(page)
        out["selected_text"] = out["selected_text"] or page.locator(".batchbar").inner_text()
    for label, step, limit in (("slow_scroll", 30, 3000), ("fast_scroll", 400, 10**9)):
        requests.clear()
        out[label] = page.evaluate(SCROLL, [step, limit])
        page.wait_for_timeout(500)
        out[label]["image_requests"] = images(requests)
        out[label]["rows_in_page"] = page.locator(".queue > li").count()
    context.close()
    return out


def last_click(page: Any) -> float:
    count = page.evaluate("() => __clicks.length")
    page.wait_for_function(f"() => __clicks.length > {count - 1} && __clicks.length")
    page.wait_for_timeout(200)
    return round(float(page.evaluate("() => __clicks[__clicks.length - 1].answered")), 1)


def measure(browser: Any, url: str, loads: int) -> dict[str, Any]:
    runs = [one_load(browser, url) for _ in range(loads)]
    load = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    return {"load": load, **clicks_and_scroll(browser, url)}


def run(data_dir: Path, src: Path | None, calls: int, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    process, url = start_modelshelf(data_dir, src, data_dir.parent / "server.log")
    try:
        server = server_times(url, calls)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            browser_figures = measure(browser, url, loads)
            browser.close()
    finally:
        stop(process)
    return {"server": server, "browser": browser_figures}


RATIOS = [
    ("load", "rows"),
    ("load", "chip_answered"),
    ("load", "blocking"),
    ("load", "first_screen_images"),
    (None, "rows_in_page"),
    (None, "Select all (check)"),
    ("fast_scroll", "p95"),
]


def figure(result: dict[str, Any], where: str | None, key: str) -> float:
    return float((result["browser"][where] if where else result["browser"])[key])


def report(label: str, result: dict[str, Any]) -> None:
    print(f"\n== {label}")
    for path, (p50, p99, size) in result["server"].items():
        print(f"  server {path:<44} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  {size:,} bytes")
    print(json.dumps(result["browser"], indent=2))


def ratios(label: str, big: dict[str, Any], small: dict[str, Any]) -> None:
    print(f"\nratios, {label}:")
    for where, key in RATIOS:
        a, b = figure(big, where, key), figure(small, where, key)
        ratio = f"{a / b:8.2f}x" if b else "       -"
        print(f"  {(where + '.' if where else '') + key:<28} {a:10.1f} / {b:10.1f} = {ratio}")
    a, b = (r["server"]["/api/migration/pending_models?checks=true"][0] for r in (big, small))
    print(f"  {'server p50 ?checks=true':<28} {a:10.1f} / {b:10.1f} = {a / b:8.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--src", type=Path, help="also measure the page served by this tree")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(reason)
        return 2
    print(machine())
    with tempfile.TemporaryDirectory(prefix="modelshelf-pending-bench-") as tmp:
        root = Path(tmp)
        sources = render_sources(root / "sources")
        dirs = {}
        for count in (args.pending, args.small):
            began = time.perf_counter()
            dirs[count] = root / f"run-{count}" / "data"
            dirs[count].parent.mkdir()
            asyncio.run(seed(dirs[count], count, sources))
            print(f"seeded {count:,} pending models in {time.perf_counter() - began:.1f} s")
        big = run(dirs[args.pending], None, args.calls, args.loads)
        report(f"this tree, {args.pending:,} pending", big)
        small = run(dirs[args.small], None, args.calls, args.loads)
        report(f"this tree, {args.small:,} pending (reference)", small)
        ratios(f"{args.pending:,} against {args.small:,} pending, this tree", big, small)
        if args.src:
            old = run(dirs[args.pending], args.src, args.calls, args.loads)
            report(f"{args.src}, {args.pending:,} pending", old)
            ratios(f"this tree against {args.src}, {args.pending:,} pending", big, old)
    return 0


if __name__ == "__main__":
    sys.exit(main())
