"""The library page with 10,000 models, measured in a real browser (Debian's Chromium).

Run from the repository root:

    .venv/bin/python bench/ui_library.py [--models 10000] [--searches 8]

It seeds a data directory through the storage layer (one change: model rows, tags, image index;
the rendition files are hard links to a few sets rendered once with pyvips, 768x1024 sources so
covers have a real size), starts `modelshelf serve` on it as a separate process, and measures:

  server  p50/p99 of the requests the library page makes (page, first page of models, tags);
  load    bytes of HTML, CSS and JS transferred before images (Resource Timing), time to the
          first cards and to the first cover drawn, image requests of the first screen against
          the cards visible on it, and their qualities;
  scroll  frame times while scrolling through the whole grid (requestAnimationFrame), the most
          cards ever in the page, image requests made on the way; a jump to the middle;
  search  results on screen after the last keystroke of a query typed at 30 ms a key, split
          into the wait before the request, the request, and drawing;
  tags    the Tags page with 1,000 tags (given in the browser, the page's work alone): time to
          the list, and a keystroke in its filter to the list laid out.

Figures go to stdout; BENCHMARKS.md keeps a run of them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server import free_port
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser

from figures import write_gradient_picture
from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.renditions import qualities
from modelshelf.storage import image_index, models, tags
from modelshelf.web.keys import SHELF

TYPES = ("lora", "lora", "checkpoint", "embedding", "lora", "vae")
TAGS = ("anime", "realistic", "style", "character", "landscape", "concept", "clothing", "pose")
BASES = ("SDXL 1.0", "SD 1.5", "Pony", "Illustrious", "Flux.1 D")
SOURCES = 6
WORDS = [
    "aurora",
    "lineart",
    "watercolor",
    "cyberpunk",
    "portrait",
    "ghibli",
    "neon",
    "ink",
    "pastel",
    "noir",
    "sketch",
]


def sha_of(i: int) -> str:
    return hashlib.sha256(f"ui-bench-{i}".encode()).hexdigest()


def render_sources(folder: Path) -> list[dict[str, Path]]:
    """A few real rendition sets (768x1024 gradients) rendered once."""
    from modelshelf.images import render_renditions

    folder.mkdir(parents=True)
    sets = []
    for n in range(SOURCES):
        source = write_gradient_picture(folder / f"s{n}.png", n)
        targets = {q: folder / f"s{n}_{q}.webp" for q in qualities()}
        render_renditions(source, targets)
        sets.append(targets)
    return sets


def link_renditions(images_dir: Path, sets: list[dict[str, Path]], count: int) -> None:
    images_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        for quality, source in sets[i % len(sets)].items():
            target = images_dir / f"{sha_of(i)}_0_{quality}.webp"
            if not target.exists():
                os.link(source, target)


async def seed(data_dir: Path, count: int) -> None:
    """Rows through the storage layer, in one change (the unit of work)."""
    settings = Settings(data_dir=data_dir, port=0).resolve_paths()
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    shelf = runner.app[SHELF]
    try:
        async with shelf.changes.change() as change:
            ids = [await tags.insert_tag(change.tx, name) for name in TAGS]
            for i in range(count):
                sha = sha_of(i)
                kind = TYPES[i % len(TYPES)]
                word = WORDS[i % len(WORDS)]
                await models.insert_model(
                    change.tx,
                    sha,
                    {
                        "path": f"/models/{kind}/{word}_{i:05d}.safetensors",
                        "name": f"{word.title()} {kind} {i:05d}",
                        "type": kind,
                        "size_bytes": 20_000_000 + 7919 * i,
                        "created_at": 1_700_000_000_000 + i * 60_000,
                        "meta_json": {
                            "base_model": BASES[i % len(BASES)],
                            "trigger_words": [f"{word} style"],
                            "description": f"A {kind} for {word} pictures.",
                        },
                    },
                )
                await models.add_model_tags(change.tx, sha, [ids[i % 8], ids[(i // 8) % 8]])
            await image_index.add_images(change.tx, [(sha_of(i), 0) for i in range(count)])
    finally:
        await runner.cleanup()


def serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHELF_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelshelf",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--config-dir",
            str(data_dir / "no-config"),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(log.read_text()[-2000:])


def server_times(url: str, calls: int) -> dict[str, tuple[float, float]]:
    """p50/p99 in ms of what the library page asks the server for."""
    paths = {
        "GET / (the page)": "/",
        "GET /api/models?limit=100 (first page)": "/api/models?limit=100&offset=0",
        "GET /api/models?limit=100&offset=9900": "/api/models?limit=100&offset=9900",
        "GET /api/models?q=ghibli&limit=100": "/api/models?q=ghibli&limit=100&offset=0",
        "GET /api/tags": "/api/tags",
    }
    figures = {}
    for label, path in paths.items():
        samples = []
        for _ in range(calls):
            began = time.perf_counter()
            with urllib.request.urlopen(url + path) as response:
                response.read()
            samples.append((time.perf_counter() - began) * 1000)
        samples.sort()
        figures[label] = (statistics.median(samples), samples[int(len(samples) * 0.99) - 1])
    return figures


# Installed before the page's own scripts: when the first cards and covers appear.
PROBE = """
performance.setResourceTimingBufferSize(100000);
window.__marks = {};
new MutationObserver(() => {
  if (!__marks.cards && document.querySelector('.card[data-state="full"]'))
    __marks.cards = performance.now();
}).observe(document, {subtree: true, childList: true});
document.addEventListener('load', (e) => {
  if (e.target.tagName === 'IMG' && !__marks.cover) __marks.cover = performance.now();
}, true);
"""

SCROLL = """async ([step, limit]) => {
  const frames = []; let last = performance.now(); let most = 0;
  const end = Math.min(limit, document.documentElement.scrollHeight - innerHeight);
  for (let y = scrollY; y <= end; y += step) {
    scrollTo(0, y);
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now(); frames.push(now - last); last = now;
    most = Math.max(most, document.querySelectorAll('.card').length);
  }
  frames.sort((a, b) => a - b);
  const pct = (p) => frames[Math.min(frames.length - 1, Math.floor(frames.length * p))];
  return {frames: frames.length, p50: pct(0.5), p95: pct(0.95), max: frames[frames.length - 1],
          long: frames.filter(f => f > 50).length, most};
}"""


def settled(page: Any) -> None:
    """Wait until no card on screen is a placeholder and every cover asked for has arrived."""
    page.wait_for_function(
        "() => !document.querySelector('.card.skeleton')"
        " && [...document.querySelectorAll('.card img[src]')].every(i => i.complete)"
    )
    page.wait_for_timeout(300)


def visible_cards(page: Any) -> int:
    return int(
        page.evaluate(
            "() => [...document.querySelectorAll('.card')].filter(c => {"
            " const r = c.getBoundingClientRect();"
            " return r.bottom > 0 && r.top < innerHeight; }).length"
        )
    )


def measure_browser(url: str, searches: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.add_init_script(PROBE)
        page.goto(url + "/")
        page.wait_for_function("() => window.__marks.cover")
        page.wait_for_load_state("networkidle")
        assets = page.evaluate(
            "() => [performance.getEntriesByType('navigation')[0],"
            " ...performance.getEntriesByType('resource')]"
            ".filter(e => /\\/ui\\/|^[^?]*\\/$/.test(e.name))"
            ".map(e => ({name: e.name, transfer: e.transferSize, body: e.decodedBodySize}))"
        )
        out["assets"] = {
            "files": len(assets),
            "transferred": sum(a["transfer"] for a in assets),
            "decoded": sum(a["body"] for a in assets),
        }
        out["marks"] = page.evaluate("() => window.__marks")
        out["requests_before_cards"] = page.evaluate(
            "() => performance.getEntriesByType('resource').filter(e => /api\\//.test(e.name))"
            ".map(e => [e.name.replace(location.origin, ''), Math.round(e.startTime),"
            " Math.round(e.responseEnd)])"
        )
        images = [u for u in requests if "/api/images/" in u]
        out["first_screen"] = {
            "visible_cards": visible_cards(page),
            "image_requests": len(images),
            "qualities": sorted({u.rsplit("=", 1)[-1] for u in images}),
        }
        requests.clear()
        # A slow scroll (a wheel turned gently, 30 px a frame) over 3,000 px, then a fast one
        # (400 px a frame, about 24,000 px/s) through the whole grid.
        for label, step, limit in (("slow_scroll", 30, 3000), ("fast_scroll", 400, 10**9)):
            requests.clear()
            out[label] = page.evaluate(SCROLL, [step, limit])
            settled(page)
            out[label]["image_requests"] = len([u for u in requests if "/api/images/" in u])
            out[label]["model_pages"] = len([u for u in requests if "/api/models?" in u])
            out[label]["visible_cards_at_end"] = visible_cards(page)
        requests.clear()
        began = page.evaluate("() => performance.now()")
        page.evaluate("() => scrollTo(0, document.documentElement.scrollHeight / 2)")
        settled(page)
        out["jump"] = {
            "ms": page.evaluate("() => performance.now()") - began,
            "image_requests": len([u for u in requests if "/api/images/" in u]),
            "visible_cards": visible_cards(page),
        }
        page.evaluate("() => scrollTo(0, 0)")
        out["search"] = search_latencies(page, searches)
        out["tags_page"] = tags_page(page, url)
        browser.close()
    return out


def search_latencies(page: Any, count: int) -> list[list[int]]:
    """Per query, ms: last keystroke to the matching cards on screen; last keystroke to the
    request; the request; response to cards on screen."""
    page.evaluate("""() => {
      document.addEventListener('keydown', () => { window.__lastKey = performance.now(); }, true);
    }""")
    latencies = []
    search = page.get_by_role("searchbox", name="Search")
    # From n = 1: the first query would match the unfiltered grid's first card already.
    for n in range(1, count + 1):
        word = f"{WORDS[n % len(WORDS)]} {TYPES[n % len(TYPES)]} {n:03d}"
        search.fill("")
        page.wait_for_function("() => !location.search.includes('q=')")
        search.press_sequentially(word, delay=30)
        page.wait_for_function(
            "(w) => { const c = document.querySelector('.card[data-state=\"full\"] .name');"
            " if (c && c.textContent.toLowerCase().startsWith(w) && !window.__shown)"
            " window.__shown = performance.now(); return window.__shown; }",
            arg=word,
        )
        latencies.append(
            page.evaluate(
                """() => {
                  const q = performance.getEntriesByType('resource')
                    .filter(e => e.name.includes('q=')).pop();
                  const row = [__shown - __lastKey, q.startTime - __lastKey,
                               q.responseEnd - q.startTime, __shown - q.responseEnd];
                  __shown = 0;
                  return row.map(Math.round);
                }"""
            )
        )
    return latencies


# Each keystroke: the field's value set, its input event, the list laid out.
FILTER_KEYS = """async (words) => {
  const field = document.getElementById("tag-filter");
  const times = [];
  for (const word of words) {
    const began = performance.now();
    field.value = word;
    field.dispatchEvent(new Event("input", { bubbles: true }));
    document.body.offsetHeight;
    times.push(performance.now() - began);
    await new Promise((drawn) => requestAnimationFrame(() => setTimeout(drawn)));
  }
  return times;
}"""


def tags_page(page: Any, url: str, count: int = 1000) -> dict[str, float]:
    """The Tags page over `count` tags: ms to the list shown, and per filter keystroke."""
    many = [
        {"id": n + 1, "name": f"{WORDS[n % len(WORDS)]} {n:04d}", "models": n % 50}
        for n in range(count)
    ]
    page.route("**/api/tags", lambda route: route.fulfill(json={"tags": many}))
    began = time.perf_counter()
    page.goto(url + "/tags")
    page.get_by_text(f"{count:,} tags", exact=True).wait_for()
    shown = (time.perf_counter() - began) * 1000
    words = ["i", "in", "ink", "ink 0", "ink 00", "ink 0", "ink", ""] * 4
    keys = sorted(page.evaluate(FILTER_KEYS, words))
    return {
        "to_list_ms": round(shown),
        "key_p50_ms": round(statistics.median(keys), 1),
        "key_max_ms": round(keys[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(reason)
        return 2
    with tempfile.TemporaryDirectory(prefix="modelshelf-ui-bench-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        began = time.perf_counter()
        asyncio.run(seed(data_dir, args.models))
        link_renditions(data_dir / "images", render_sources(root / "sources"), args.models)
        print(
            f"seeded {args.models:,} models with a cover each"
            f" in {time.perf_counter() - began:.1f} s"
        )
        process, url = serve(data_dir, root / "server.log")
        try:
            print("\nserver, ms (p50, p99):")
            for label, (p50, p99) in server_times(url, args.calls).items():
                print(f"  {label:<44} {p50:7.2f} {p99:7.2f}")
            figures = measure_browser(url, args.searches)
        finally:
            process.terminate()
            process.wait()
    print("\nbrowser:")
    print(json.dumps(figures, indent=2))
    latencies = sorted(row[0] for row in figures["search"])
    print(
        f"\nsearch: last keystroke to results, ms: median {statistics.median(latencies):.0f},"
        f" max {latencies[-1]:.0f} (per query: total, key to request, request, drawing)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
