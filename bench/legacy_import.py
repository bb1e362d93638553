"""Stage-1 benchmark: a realistic legacy library migrated through the real CLI, in one run.

    .venv/bin/python bench/legacy_import.py [--models 10000 --images 5000] [--workers N] [--keep]

1. Generates, in a temporary folder, a legacy library in the contract's legacy schema: --models
   models (about 60% hashed with distinct SHA256s, 40% unhashed), 50 tags (one per model type),
   1-4 tags per model, extra_json with description, prompts, community_links, an unknown key
   and an `images` list; --images real image files (768x1152 and similar JPEGs, PNGs with and
   without alpha, a few 4-megapixel JPEGs) spread over the models. A handful of distinct source
   images are made with pyvips and copied under many names.
2. Runs `python -m modelshelf migrate-legacy ... --no-progress` as a child process and measures
   its wall time, CPU time and peak RSS (os.wait4 in a small launcher process: the rusage of
   exactly that child, not inflated by this process's own peak).
3. Reference, in the same run: renders the images of the hashed models with
   `modelshelf.images.render_renditions` in a plain ThreadPoolExecutor with the same number of
   workers and copies the pending originals: the unavoidable work. ratio = cli / reference is the
   cost of everything else (database, planning, verification of pending images, file moves).
4. Validates the new data directory (counts, tag ids, rendition files, pending files), checks
   that the progress logger wrote lines, and runs the CLI a second time: it must add nothing.

Exit status 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyvips
from tests.factories import LEGACY_SCHEMA

from modelshelf.images import render_renditions
from modelshelf.renditions import qualities

QUALITIES = qualities()

TYPES = ["checkpoint", "lora", "vae", "embedding", "controlnet", "upscaler"]
TYPE_WEIGHTS = [25, 50, 5, 10, 7, 3]
# (file suffix, width, height, alpha, weight): what AI example images usually are.
SOURCES = [
    ("jpg", 768, 1152, False, 35),
    ("jpg", 1152, 768, False, 15),
    ("jpg", 832, 1216, False, 15),
    ("png", 1024, 1024, False, 15),
    ("png", 768, 1152, True, 10),
    ("jpg", 2048, 2048, False, 10),  # over 2 megapixels: high is scaled down
]
IMAGES_PER_MODEL = [(1, 50), (2, 25), (3, 15), (4, 7), (6, 3)]


@dataclass
class Library:
    """What was generated, and what the migration must produce from it."""

    db_path: Path
    images_dir: Path
    tags: dict[int, str] = field(default_factory=dict)
    hashed: set[int] = field(default_factory=set)
    unhashed: set[int] = field(default_factory=set)
    model_tag_links: int = 0
    pending_tag_links: int = 0
    images_of: dict[int, list[str]] = field(default_factory=dict)
    image_bytes: int = 0

    @property
    def rendered_images(self) -> list[Path]:
        return [
            self.images_dir / name
            for model_id in sorted(self.hashed)
            for name in self.images_of.get(model_id, [])
        ]

    @property
    def pending_originals(self) -> list[tuple[int, Path]]:
        return [
            (model_id, self.images_dir / self.images_of[model_id][0])
            for model_id in sorted(self.unhashed)
            if self.images_of.get(model_id)
        ]


# --- generating the legacy library ------------------------------------------------------------


def source_image(path: Path, width: int, height: int, alpha: bool, seed: int) -> None:
    """A picture with smooth gradients, shapes and fine grain, so encoders work as on a real
    generated image (pure noise would be unrealistically large, flat colour unrealistically
    small)."""
    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    red = x * (200 / width) + 30
    green = y * (180 / height) + ((x + y) * (0.05 + seed * 0.01)).sin() * 25 + 20
    blue = ((x - width / 2) ** 2 + (y - height / 2) ** 2) ** 0.5 * (255 / max(width, height))
    image = red.bandjoin([green, blue])
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0, seed=seed)
    image = (image + grain.bandjoin([grain, grain])).cast("uchar").copy(interpretation="srgb")
    if alpha:
        mask = ((x - width / 2) ** 2 + (y - height / 2) ** 2) ** 0.5 < min(width, height) / 2.2
        image = image.bandjoin(mask.ifthenelse(255, 40).cast("uchar"))
    if path.suffix == ".jpg":
        image.jpegsave(str(path), Q=90)
    else:
        image.pngsave(str(path), compression=6)


def generate(root: Path, models: int, images: int, seed: int) -> Library:
    rng = random.Random(seed)
    legacy = root / "legacy"
    lib = Library(legacy / "hikaze.db", legacy / "images")
    lib.images_dir.mkdir(parents=True)
    sources_dir = root / "sources"
    sources_dir.mkdir()
    sources: list[Path] = []
    for index, (suffix, width, height, alpha, _) in enumerate(SOURCES):
        path = sources_dir / f"source_{index}.{suffix}"
        source_image(path, width, height, alpha, index)
        sources.append(path)
    source_weights = [s[4] for s in SOURCES]

    # Tag ids with gaps, so "tags keep their ids" means something.
    names = TYPES + [f"style {n:02d}" if n % 3 else f"artist-{n:02d}" for n in range(44)]
    lib.tags = {7 + 3 * i: name for i, name in enumerate(names)}
    type_tag = {name: tag_id for tag_id, name in lib.tags.items() if name in TYPES}
    other_tags = [tag_id for tag_id, name in lib.tags.items() if name not in TYPES]

    model_ids = list(range(1, models + 1))
    lib.hashed = set(rng.sample(model_ids, round(models * 0.6)))
    lib.unhashed = set(model_ids) - lib.hashed

    # Spread the images: shuffled models get 1, 2, 3, 4 or 6 images until all are given out.
    left = images
    counts = [c for c, _ in IMAGES_PER_MODEL]
    weights = [w for _, w in IMAGES_PER_MODEL]
    order = model_ids[:]
    rng.shuffle(order)
    ms = 1_700_000_000_000
    for model_id in order:
        if left <= 0:
            break
        count = min(left, rng.choices(counts, weights)[0])
        left -= count
        names_here = []
        for k in range(count):
            ms += rng.randint(1, 5000)
            index = rng.choices(range(len(sources)), source_weights)[0]
            original = f"image {k}" if rng.random() < 0.05 else f"img_{k:03d}"
            name = f"model_{model_id}_{ms}_{original}.{SOURCES[index][0]}"
            shutil.copyfile(sources[index], lib.images_dir / name)
            lib.image_bytes += sources[index].stat().st_size
            names_here.append(name)
        lib.images_of[model_id] = names_here

    rows = []
    links = []
    for model_id in model_ids:
        kind = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        tags = [type_tag[kind], *rng.sample(other_tags, rng.randint(0, 3))]
        links += [(model_id, t) for t in tags]
        if model_id in lib.hashed:
            lib.model_tag_links += len(tags)
        else:
            lib.pending_tag_links += len(tags)
        extra: dict[str, Any] = {
            "description": f"A {kind} trained on {rng.randint(100, 9000)} images. " * 4,
            "prompts": {
                "positive": "masterpiece, best quality, 1girl, detailed background, " * 3,
                "negative": "lowres, bad anatomy, bad hands, text, error, watermark",
            },
            "community_links": [f"https://civitai.example/models/{model_id}"],
            "trigger_words": [f"tw{model_id}"],  # a key the new service does not know
        }
        if lib.images_of.get(model_id):
            extra["images"] = [
                "/media/" + urllib.parse.quote(name) for name in lib.images_of[model_id]
            ]
        hash_hex = (
            _sha(f"legacy-model-{model_id}") if model_id in lib.hashed else ""
        )  # distinct hashes
        rows.append(
            (
                model_id,
                f"/models/{kind}/model_{model_id:05d}.safetensors",
                f"model {model_id:05d}",
                kind,
                rng.randint(10, 7000) * 1024 * 1024,
                hash_hex,
                1_690_000_000_000 + model_id * 1000,
                None,
                json.dumps(extra),
            )
        )

    with sqlite3.connect(lib.db_path) as conn:
        conn.executescript(LEGACY_SCHEMA)
        conn.executemany(
            "INSERT INTO tags(id, name, color, created_at) VALUES (?, ?, '#888', 0)",
            sorted(lib.tags.items()),
        )
        conn.executemany("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO model_tags(model_id, tag_id) VALUES (?, ?)", links)
    conn.close()
    return lib


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- running the CLI --------------------------------------------------------------------------


@dataclass
class ChildRun:
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


# The CLI is started by this small launcher, not by the benchmark itself: Linux carries the
# parent's peak RSS over into a child it starts (the hiwater mark survives exec), so wait4 on a
# child of this big process would report this process's peak, not the CLI's.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.executable, [sys.executable, *sys.argv[2:]], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - started} {usage.ru_utime + usage.ru_stime}"
              f" {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run_cli(
    lib: Library,
    data_dir: Path,
    workers: int,
    scratch: Path,
    label: str,
    src: Path | None = None,
) -> ChildRun:
    """The CLI in a child process; `src`: another checkout's `src` folder to run instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHELF_")}
    env["MODELSHELF_WORKERS"] = str(workers)
    if src is not None:  # before the venv's editable install of this checkout
        env["PYTHONPATH"] = str(src)
    out, err = scratch / f"{label}.stdout", scratch / f"{label}.stderr"
    usage_file = scratch / f"{label}.usage"
    command = [
        "-m",
        "modelshelf",
        "migrate-legacy",
        "--data-dir",
        str(data_dir),
        "--legacy-db",
        str(lib.db_path),
        "--legacy-images",
        str(lib.images_dir),
        "--no-progress",
    ]
    with out.open("w") as stdout, err.open("w") as stderr:
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(usage_file), *command],
            stdout=stdout,
            stderr=stderr,
            cwd=scratch,
            env=env,
            check=True,
        )
    seconds, cpu, maxrss_kib, returncode = usage_file.read_text().split()
    return ChildRun(
        seconds=float(seconds),
        cpu_seconds=float(cpu),
        peak_rss_mib=int(maxrss_kib) / 1024,
        returncode=int(returncode),
        stdout=out.read_text(),
        stderr=err.read_text(),
    )


# --- the reference: the unavoidable work ------------------------------------------------------


def reference(lib: Library, target: Path, workers: int) -> tuple[float, float, int]:
    """Render every image of the hashed models and copy every pending original."""
    target.mkdir()
    (target / "pending").mkdir()
    jobs = list(enumerate(lib.rendered_images))

    def render(job: tuple[int, Path]) -> None:
        index, source = job
        render_renditions(source, {q: target / f"{index}_{q}.webp" for q in QUALITIES})

    def copy(job: tuple[int, Path]) -> None:
        model_id, source = job
        shutil.copyfile(source, target / "pending" / f"{model_id}{source.suffix}")

    cpu_before = _own_cpu()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(render, jobs))
        list(pool.map(copy, lib.pending_originals))
    seconds = time.perf_counter() - started
    return seconds, _own_cpu() - cpu_before, len(jobs)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- validation -------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, what: str, got: object, expected: object) -> None:
        ok = got == expected
        if not ok:
            self.failed.append(what)
        shown = f"{got}" if ok else f"{got} (expected {expected})"
        print(f"  [{'ok' if ok else 'FAIL'}] {what}: {shown}")


def counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{data_dir / 'modelshelf.db'}?mode=ro", uri=True) as conn:
        result = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "models",
                "pending_import",
                "tags",
                "model_tags",
                "pending_model_tags",
                "images",
                "pending_images",
                "legacy_import_log",
                "file_journal",
            )
        }
    conn.close()
    images = data_dir / "images"
    result["rendition files"] = sum(1 for _ in images.glob("*.webp"))
    result["pending files"] = sum(1 for _ in (images / "pending").iterdir())
    staging = images / ".staging"
    result["staging entries"] = sum(1 for _ in staging.iterdir()) if staging.exists() else 0
    return result


def validate(lib: Library, data_dir: Path, report: dict[str, Any], checks: Checks) -> None:
    got = counts(data_dir)
    rendered = len(lib.rendered_images)
    pending_with_image = len(lib.pending_originals)
    checks.check("models", got["models"], len(lib.hashed))
    checks.check("pending_import", got["pending_import"], len(lib.unhashed))
    checks.check("model_tags", got["model_tags"], lib.model_tag_links)
    checks.check("pending_model_tags", got["pending_model_tags"], lib.pending_tag_links)
    checks.check("images index rows", got["images"], rendered)
    checks.check("rendition files (3 x rendered images)", got["rendition files"], 3 * rendered)
    checks.check("pending image files", got["pending files"], pending_with_image)
    checks.check("legacy_import_log", got["legacy_import_log"], len(lib.hashed | lib.unhashed))
    checks.check("file_journal rows left", got["file_journal"], 0)
    checks.check("staging entries left", got["staging entries"], 0)
    with sqlite3.connect(f"file:{data_dir / 'modelshelf.db'}?mode=ro", uri=True) as conn:
        tags = dict(conn.execute("SELECT id, name FROM tags").fetchall())
        pending_ids = {r[0] for r in conn.execute("SELECT id FROM pending_import")}
        sample = conn.execute("SELECT meta_json FROM models ORDER BY sha256 LIMIT 1").fetchone()
    conn.close()
    checks.check("tags keep their ids and names", tags == lib.tags, True)
    checks.check("pending ids are the legacy ids", pending_ids == lib.unhashed, True)
    meta = json.loads(sample[0])
    checks.check(
        "meta_json keeps every key but the image keys",
        sorted(meta),
        ["community_links", "description", "prompts", "trigger_words"],
    )
    db, im = report["db_migration"], report["image_migration"]
    checks.check("report models_imported", db["models_imported"], len(lib.hashed))
    checks.check("report pending_created", db["pending_created"], len(lib.unhashed))
    checks.check("report renditions_created", im["renditions_created"], rendered)
    checks.check("report pending_images_copied", im["pending_images_copied"], pending_with_image)
    checks.check("report problems", len(report["problems"]), 0)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " modelshelf.progress: " in line]


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--old-src",
        type=Path,
        help="an older checkout's src folder (git archive REV src): its CLI runs the same"
        " library first, and the summary prints the speed-up (issue 13: >= 1.5x)",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="modelshelf-bench-legacy-"))
    checks = Checks()
    try:
        started = time.perf_counter()
        lib = generate(root, args.models, args.images, args.seed)
        generated_s = time.perf_counter() - started
        rendered = len(lib.rendered_images)
        pending_copies = len(lib.pending_originals)
        listed = sum(len(v) for v in lib.images_of.values())
        print(f"legacy library in {root} generated in {generated_s:.1f} s:")
        print(
            f"  {args.models} models ({len(lib.hashed)} hashed, {len(lib.unhashed)} unhashed),"
            f" {len(lib.tags)} tags, {lib.model_tag_links + lib.pending_tag_links} tag links"
        )
        print(
            f"  {listed} image files ({lib.image_bytes / 2**20:.0f} MiB) on"
            f" {len(lib.images_of)} models: {rendered} to render for hashed models,"
            f" {pending_copies} pending originals to copy"
        )
        print(f"  workers: {args.workers}, cpus: {os.cpu_count()}, load average: {_load()}")

        data_dir = root / "data"
        old = None
        if args.old_src is not None:
            print(f"\nold code ({args.old_src}): python -m modelshelf migrate-legacy ...")
            old = run_cli(lib, root / "data-old", args.workers, root, "old", args.old_src)
            print(
                f"  wall {old.seconds:.1f} s, cpu {old.cpu_seconds:.1f} s,"
                f" peak RSS {old.peak_rss_mib:.1f} MiB, exit {old.returncode}"
            )
            shutil.rmtree(root / "data-old")
        print("\nfirst run: python -m modelshelf migrate-legacy ... --no-progress")
        first = run_cli(lib, data_dir, args.workers, root, "first")
        if first.returncode != 0:
            print(first.stderr[-5000:])
            print(f"FAIL: the CLI exited with {first.returncode}")
            return 1
        report = json.loads(first.stdout)
        print(
            f"  wall {first.seconds:.1f} s, cpu {first.cpu_seconds:.1f} s,"
            f" peak RSS {first.peak_rss_mib:.1f} MiB"
        )
        print(f"  db_migration: {json.dumps(report['db_migration'])}")
        print(f"  image_migration: {json.dumps(report['image_migration'])}")
        lines = progress_lines(first.stderr)
        print(
            f"  progress log lines: {len(lines)} of {len(first.stderr.splitlines())} stderr lines"
        )
        for line in lines[:2] + (["  ..."] if len(lines) > 4 else []) + lines[-2:]:
            print(f"    {line}")
        checks.check(
            "progress lines logged (start, periodic, finish)",
            len(lines) >= 3 and "finished" in lines[-1],
            True,
        )

        print("\nvalidation of the new data directory:")
        validate(lib, data_dir, report, checks)
        after_first = counts(data_dir)

        print(f"\nreference: render_renditions in ThreadPoolExecutor({args.workers}) + copies")
        ref_s, ref_cpu, ref_rendered = reference(lib, root / "reference", args.workers)
        print(
            f"  {ref_rendered} images rendered + {pending_copies} originals copied in"
            f" {ref_s:.1f} s, cpu {ref_cpu:.1f} s"
            f" ({1000 * ref_s / max(1, ref_rendered):.1f} ms per rendered image)"
        )
        shutil.rmtree(root / "reference")

        print("\nsecond run (must add nothing):")
        second = run_cli(lib, data_dir, args.workers, root, "second")
        again = json.loads(second.stdout) if second.returncode == 0 else {}
        print(
            f"  wall {second.seconds:.1f} s, cpu {second.cpu_seconds:.1f} s,"
            f" peak RSS {second.peak_rss_mib:.1f} MiB, exit {second.returncode}"
        )
        if again:
            print(f"  db_migration: {json.dumps(again['db_migration'])}")
            print(f"  image_migration: {json.dumps(again['image_migration'])}")
            checks.check("already_migrated", again["db_migration"]["already_migrated"], args.models)
            checks.check("models_imported", again["db_migration"]["models_imported"], 0)
            checks.check("pending_created", again["db_migration"]["pending_created"], 0)
            checks.check("renditions_created", again["image_migration"]["renditions_created"], 0)
        checks.check("counts unchanged by the second run", counts(data_dir), after_first)

        own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("\nsummary")
        print(f"  models / images:           {args.models} / {listed}")
        print(f"  first run (CLI):           {first.seconds:.1f} s")
        print(f"  reference (render + copy): {ref_s:.1f} s")
        print(f"  ratio cli / reference:     {first.seconds / ref_s:.2f} (wall time)")
        print(f"  cpu ratio cli / reference: {first.cpu_seconds / ref_cpu:.2f} (cpu time)")
        if old is not None:
            speedup = old.seconds / first.seconds
            print(
                f"  old code / this code:      {speedup:.2f}x (wall),"
                f" {old.cpu_seconds / first.cpu_seconds:.2f}x (cpu);"
                f" target >= 1.5x: {'MET' if speedup >= 1.5 else 'MISSED'}"
            )
        print(
            f"  per rendered image (CLI):  {1000 * first.seconds / max(1, rendered):.1f} ms wall,"
            f" {1000 * first.cpu_seconds / max(1, rendered):.1f} ms cpu"
        )
        print(f"  peak RSS of the CLI:       {first.peak_rss_mib:.1f} MiB")
        print(f"  second run:                {second.seconds:.1f} s (adds nothing)")
        print(f"  peak RSS of this script:   {own_rss:.1f} MiB (generation and reference)")
        print(
            f"  load average now:          {_load()} (other work on the machine skews wall times)"
        )
        print(f"  checks failed:             {len(checks.failed)} {checks.failed or ''}")
        return 0 if not checks.failed else 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
