"""The pages other than the library grid, at a collector's scale, in a real browser.

Run from the repository root:

    .venv/bin/python bench/ui_scale.py [--calls 30]

It seeds two data directories through the storage layer (one change each), a collector's and a
small reference, and serves each with `modelshelf serve` as a separate process:

  collector  a model with 300 example images, 20 file locations and 1,000 history entries;
             2,000 finished jobs (scans, each listing 20 problems); 2,000 models each on disk
             at 3 paths (the library-wide duplicates); 10,000 tags;
  reference  the same with 10 images, 10 history entries, 10 jobs, 10 duplicated models and
             100 tags.

For each page (a model, Jobs with its duplicates, Tags) it measures the server's p50/p99 and
answer bytes of the requests the page makes (the history whole, and the page of it the web UI
asks for), then in Debian's Chromium: ms from navigation to each part drawn and to interactive
(the end of the last long task, if later), the page's DOM nodes and the bytes of its API
answers (`api_bytes` with the example images shown, `json_bytes` without). On the model page
it also times moving an image (Alt+Left, to its toast) and deleting one (confirmed, to its
toast), each with the history drawn again after. The collector's figures are printed beside
the reference's, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.records import Job, JobProgress
from modelshelf.renditions import qualities
from modelshelf.storage import history, image_index, jobs, model_files, models, tags
from modelshelf.web.keys import SHELF
from ui_library import render_sources, serve


@dataclass(frozen=True)
class Scale:
    images: int
    entries: int
    jobs: int
    duplicated: int
    tags: int


COLLECTOR = Scale(images=300, entries=1000, jobs=2000, duplicated=2000, tags=10_000)
REFERENCE = Scale(images=10, entries=10, jobs=10, duplicated=10, tags=100)
FILES = 20  # locations of the model of the model page
DESCRIPTION = "A LoRA for soft watercolour washes, trained on 400 pictures. " * 20


def sha_of(label: str) -> str:
    return hashlib.sha256(f"ui-scale-{label}".encode()).hexdigest()


THE_MODEL = sha_of("the model")


def model_fields(sha: str, n: int) -> dict[str, Any]:
    return {
        "path": f"/models/loras/model_{n:05d}.safetensors",
        "name": f"Watercolor LoRA {n:05d}",
        "type": "lora",
        "size_bytes": 150_000_000 + n,
        "created_at": 1_700_000_000_000 + n * 60_000,
        "meta_json": {
            "base_model": "SDXL 1.0",
            "trigger_words": ["watercolor style", "soft wash"],
            "description": DESCRIPTION,
        },
    }


async def seed_model(change: Any, scale: Scale) -> None:
    """The model of the model page: its images, files and history."""
    await models.insert_model(change.tx, THE_MODEL, model_fields(THE_MODEL, 0))
    await image_index.add_images(change.tx, [(THE_MODEL, s) for s in range(scale.images)])
    for n in range(FILES):
        where = f"/models/loras/copy{n:02d}/watercolor.safetensors"
        location = model_files.Location(where, THE_MODEL, "lora", 150_000_000, 1, n + 1, 1)
        await model_files.save_location(change.tx, location, 1)
    record = await models.fetch_model(change.tx, THE_MODEL)
    assert record is not None
    before = record.model_dump(mode="json")
    for n in range(scale.entries):
        before["name"] = f"Watercolor LoRA, version {n}"
        patch = {"columns": {"name": f"Watercolor LoRA, version {n + 1}"}, "meta_json": None}
        await history.record_history(change.tx, THE_MODEL, None, "edit", before, patch)


async def seed_rest(change: Any, scale: Scale) -> None:
    """Finished jobs, duplicated models, tags."""
    for n in range(scale.jobs):
        at = 1_700_000_000_000 + n * 3_600_000
        problems = [
            {"path": f"/models/broken/{k}.safetensors", "reason": "header"} for k in range(20)
        ]
        result = {"counts": {"files_found": 9000 + n, "unchanged": 9000, "failed": 20}}
        job = Job(
            id=hashlib.md5(f"job {n}".encode()).hexdigest(),
            kind="scan",
            state="done",
            created_at=at,
            started_at=at,
            finished_at=at + 60_000,
            progress=JobProgress(done=9000 + n, total=9000 + n),
            result=result | {"problems": problems, "problems_not_listed": 0},
        )
        await jobs.insert_job(change.tx, job)
    ids = [await tags.insert_tag(change.tx, f"tag {n:05d}") for n in range(scale.tags)]
    for n in range(scale.duplicated):
        sha = sha_of(f"dup {n}")
        await models.insert_model(change.tx, sha, model_fields(sha, n + 1))
        await models.add_model_tags(change.tx, sha, [ids[n % len(ids)], ids[(n * 7) % len(ids)]])
        for k in range(3):
            where = f"/models/disk{k}/loras/model_{n:05d}.safetensors"
            location = model_files.Location(
                where, sha, "lora", 150_000_000, 1, 10_000 + 3 * n + k, 1
            )
            await model_files.save_location(change.tx, location, 1)


async def seed(data_dir: Path, scale: Scale) -> None:
    settings = Settings(data_dir=data_dir, port=0).resolve_paths()
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    try:
        async with runner.app[SHELF].changes.change() as change:
            await seed_model(change, scale)
            await seed_rest(change, scale)
    finally:
        await runner.cleanup()


def link_images(images_dir: Path, sets: list[dict[str, Path]], count: int) -> None:
    images_dir.mkdir(parents=True, exist_ok=True)
    for seq in range(count):
        for quality in qualities():
            (images_dir / f"{THE_MODEL}_{seq}_{quality}.webp").hardlink_to(
                sets[seq % len(sets)][quality]
            )


def timed(url: str, method: str, path: str, body: Any = None) -> tuple[float, int]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    began = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        size = len(response.read())
    return (time.perf_counter() - began) * 1000, size


READS = {
    "GET /api/models/{sha256}": f"/api/models/{THE_MODEL}",
    "GET /api/models/{sha256}/history": f"/api/models/{THE_MODEL}/history",
    "GET /api/models/{sha256}/history?limit=21": f"/api/models/{THE_MODEL}/history?limit=21",
    "GET /api/jobs": "/api/jobs",
    "GET /api/duplicates": "/api/duplicates",
    "GET /api/tags": "/api/tags",
}


def server_times(url: str, calls: int, images: int) -> dict[str, dict[str, float]]:
    """p50/p99 ms and answer bytes of each read; a reorder of every image (the last to the
    cover, then back), as a write that renames every rendition file."""
    figures = {}
    for label, path in READS.items():
        samples = [timed(url, "GET", path) for _ in range(calls)]
        figures[label] = summary([t for t, _ in samples]) | {"bytes": samples[0][1]}
    names = [f"{THE_MODEL}_{s}.webp" for s in range(images)]
    samples = []
    for n in range(max(4, calls // 5)):
        order = names[-1:] + names[:-1] if n % 2 == 0 else names[1:] + names[:1]
        samples.append(
            timed(url, "POST", "/api/images/reorder", {"hash": THE_MODEL, "order": order})
        )
    figures["POST /api/images/reorder (every image)"] = summary([t for t, _ in samples]) | {
        "bytes": samples[0][1]
    }
    return figures


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return {"p50": round(statistics.median(samples), 2), "p99": round(p99, 2)}


# Installed before the page's scripts: when each wanted selector first matches, and long tasks.
PROBE = """
window.__marks = {}; window.__long = [];
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) __long.push(e.startTime + e.duration);
}).observe({type: 'longtask', buffered: true});
new MutationObserver(() => {
  for (const [name, selector] of (window.__want || []))
    if (!__marks[name] && document.querySelector(selector)) __marks[name] = performance.now();
}).observe(document, {subtree: true, childList: true});
"""

FIGURES = """() => {
  const drawn = Math.max(...Object.values(__marks));
  const api = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'));
  const marks = Object.entries(__marks).map(([k, v]) => [k + '_ms', Math.round(v)]);
  return {...Object.fromEntries(marks),
    interactive_ms: Math.round(Math.max(drawn, ...__long)), long_tasks: __long.length,
    dom_nodes: document.getElementsByTagName('*').length,
    api_bytes: api.reduce((n, e) => n + e.decodedBodySize, 0),
    json_bytes: api.filter(e => !e.name.includes('/api/images/'))
      .reduce((n, e) => n + e.decodedBodySize, 0)};
}"""

PAGES = {
    "model": (
        f"/models/{THE_MODEL}",
        {"gallery": ".gallery .thumbs li", "history": "ol.history li"},
    ),
    "jobs": ("/jobs", {"jobs": "ul.jobs li.job", "duplicates": "#dup-title + div ul.files"}),
    "tags": ("/tags", {"tags": ".tag-list li"}),
}


def measure_page(browser: Any, url: str, path: str, want: dict[str, str]) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.add_init_script(f"window.__want = {json.dumps(list(want.items()))};" + PROBE)
    page.goto(url + path)
    page.wait_for_function(
        f"() => Object.keys(window.__marks).length === {len(want)}", timeout=120_000
    )
    page.wait_for_load_state("networkidle")
    figures: dict[str, Any] = page.evaluate(FIGURES)
    if path.startswith("/models/"):
        figures |= model_actions(page)
    context.close()
    return figures


def model_actions(page: Any) -> dict[str, float]:
    """Move the last image one place earlier, then delete the image shown: ms to each toast,
    and to the history drawn again after it."""
    out = {}
    page.locator(".thumbs .thumb").first.focus()
    page.keyboard.press("End")
    for label, act, toast in (
        ("move", lambda: page.keyboard.press("Alt+ArrowLeft"), "Image moved"),
        ("delete", lambda: delete_shown(page), "Image deleted"),
    ):
        page.evaluate("() => document.querySelector('ol.history').dataset.old = '1'")
        began = time.perf_counter()
        act()
        page.locator(".toast", has_text=toast).first.wait_for(timeout=120_000)
        out[f"{label}_to_toast_ms"] = round((time.perf_counter() - began) * 1000)
        page.wait_for_selector("ol.history:not([data-old]) li", timeout=120_000)
        out[f"{label}_to_history_ms"] = round((time.perf_counter() - began) * 1000)
        page.locator(".toast").evaluate_all("(ts) => ts.forEach((t) => t.remove())")
    return out


def delete_shown(page: Any) -> None:
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete image").click()


def measure(url: str, calls: int, scale: Scale) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {"server": server_times(url, calls, scale.images)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for name, (path, want) in PAGES.items():
            out[name] = measure_page(browser, url, path, want)
        browser.close()
    return out


def run(root: Path, label: str, scale: Scale, sets: list[dict[str, Path]], calls: int) -> Any:
    data_dir = root / label
    began = time.perf_counter()
    asyncio.run(seed(data_dir, scale))
    link_images(data_dir / "images", sets, scale.images)
    print(f"seeded {label} {scale} in {time.perf_counter() - began:.1f} s", flush=True)
    process, url = serve(data_dir, root / f"{label}.log")
    try:
        return measure(url, calls, scale)
    finally:
        process.terminate()
        process.wait()


def report(big: dict[str, Any], small: dict[str, Any]) -> None:
    print(f"\n{'':56} {'collector':>12} {'reference':>12} {'ratio':>8}")
    for section in big:
        print(section)
        for label, value in big[section].items():
            values = value if isinstance(value, dict) else {"": value}
            for key, figure in values.items():
                other = (
                    small[section][label]
                    if isinstance(value, dict)
                    else {"": small[section][label]}
                )[key]
                ratio = f"{figure / other:8.1f}" if other else f"{'':>8}"
                name = f"  {label} {key}".rstrip()
                print(f"{name:<56} {figure:>12,} {other:>12,} {ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(reason)
        return 2
    with tempfile.TemporaryDirectory(prefix="modelshelf-ui-scale-") as tmp:
        root = Path(tmp)
        sets = render_sources(root / "sources")
        small = run(root, "reference", REFERENCE, sets, args.calls)
        big = run(root, "collector", COLLECTOR, sets, args.calls)
    report(big, small)
    return 0


if __name__ == "__main__":
    sys.exit(main())
