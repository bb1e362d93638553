"""A small, realistic library for the browser tests and the screenshots: models of three
types with tags, base models, trigger words, descriptions, links and real images (stage 1 from
a legacy library made with tests/factories.py), plus pending models: new ones, conflicts with
a model already in the library, and ones whose file is gone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyvips

from tests.factories import LegacyLibrary, fake_sha, make_model_file

TAGS = {
    1: "checkpoint",
    2: "lora",
    3: "embedding",
    4: "anime",
    5: "realistic",
    6: "style",
    7: "character",
    8: "landscape",
}
TYPE_TAG = {"checkpoint": 1, "lora": 2, "embedding": 3}
BASES = ["SDXL 1.0", "SD 1.5", "Pony", "Flux.1 D"]
WORDS = [
    "Aurora",
    "Lineart",
    "Watercolor",
    "Cyberpunk",
    "Portrait",
    "Ghibli",
    "Neon",
    "Ink",
    "Pastel",
    "Film Grain",
    "Oil Paint",
    "Pixel",
    "Chibi",
    "Noir",
    "Sketch",
    "Vapor",
]
COLOURS = [
    (220, 60, 60),
    (60, 160, 90),
    (70, 90, 210),
    (230, 170, 40),
    (150, 70, 190),
    (40, 170, 190),
    (200, 100, 150),
    (120, 120, 120),
]


@dataclass
class SeededLibrary:
    """What was seeded, for tests to find their way: hashes by name, pending ids by role."""

    data_dir: Path
    hashes: dict[str, str] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)


def make_picture(
    path: Path, size: tuple[int, int], colour: tuple[int, int, int], other: tuple[int, int, int]
) -> str:
    """A real image: a diagonal gradient from `colour` to `other` with a pale disc; returns
    the file name (the format follows the suffix)."""
    width, height = size
    xyz = pyvips.Image.xyz(width, height)
    t = (xyz[0] / width + xyz[1] / height) / 2
    red, green, blue = (t * (b - a) + a for a, b in zip(colour, other, strict=True))
    image = red.bandjoin([green, blue])
    image = image.cast("uchar").copy(interpretation="srgb")
    image = image.draw_circle([250, 240, 225], width // 2, height // 3, width // 6, fill=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.write_to_file(str(path))
    return path.name


def _type_of(i: int) -> str:
    return ("lora", "lora", "checkpoint", "embedding")[i % 4]


def seed_library(
    root: Path, models: int = 36, picture: tuple[int, int] = (96, 128)
) -> SeededLibrary:
    """Build a legacy library under `root` and bring it into `root/data` with stage 1;
    `picture` is the size of the example images (small for tests, larger for screenshots)."""
    legacy = LegacyLibrary(root / "legacy")
    for tag_id, name in TAGS.items():
        legacy.add_tag(tag_id, name)
    seeded = SeededLibrary(root / "data")
    for i in range(1, models + 1):
        kind = _type_of(i)
        name = f"{WORDS[i % len(WORDS)]} {kind.title()} v{i % 3 + 1}"
        if i == 1:
            name = "Aurora Lineart XL"
        images = [
            make_picture(legacy.images_dir / f"m{i}_{n}.png", picture, *_colours(i + n))
            for n in range(4 if i == 1 else i % 4)
        ]
        extra = {
            "description": f"{name}: a {kind} for {BASES[i % 4]} renders.",
            "base_model": BASES[i % 4],
            "trigger_words": [f"{WORDS[i % len(WORDS)].lower()} style", "masterpiece"],
            "community_links": f"https://example.org/models/{i}",
            "prompts": {
                "positive": f"{WORDS[i % len(WORDS)].lower()}, 1girl",
                "negative": "lowres",
            },
        }
        tags = [TYPE_TAG[kind], 4 + i % 5]
        legacy.add_model(
            i,
            hash_hex=fake_sha(i),
            type=kind,
            name=name,
            extra=extra,
            tags=tags,
            images=images,
            size_bytes=(i % 7 + 1) * 37_000_000,
            created_at=1_700_000_000_000 + i * 86_400_000,
        )
        seeded.hashes[name] = fake_sha(i)
    _add_pending(root, legacy, seeded, models + 1, picture)
    legacy.migrate_with_cli(seeded.data_dir, root / "no-config")
    return seeded


def _colours(n: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    return COLOURS[n % 8], COLOURS[(n * 3 + 5) % 8]


def _add_pending(
    root: Path,
    legacy: LegacyLibrary,
    seeded: SeededLibrary,
    first_id: int,
    picture: tuple[int, int],
) -> None:
    """Pending models: fresh ones, conflicts (their file's content is already a model), and
    one whose file is missing."""
    files = root / "model-files"
    next_id = first_id
    for n in range(3):  # conflicts: a library model with the same content
        path = files / f"conflict_{n}.safetensors"
        sha = make_model_file(path, size=8192, seed=100 + n)
        existing = f"Existing Conflict {n}"
        legacy.add_model(
            next_id,
            hash_hex=sha,
            type="lora",
            name=existing,
            tags=[2, 6],
            extra={
                "description": "the library's version",
                "base_model": "SDXL 1.0",
                "trigger_words": ["old words"],
                "notes": "kept",
            },
            images=[make_picture(legacy.images_dir / f"e{n}.png", picture, *_colours(n))],
        )
        seeded.hashes[existing] = sha
        legacy.add_model(
            next_id + 1,
            path=str(path),
            type="lora",
            name=f"Pending Conflict {n}",
            tags=[2, 7],
            extra={
                "description": "",
                "version": "2.0",
                "trigger_words": ["new words"],
                "source": "https://example.org/pending",
            },
            images=[make_picture(legacy.images_dir / f"p{n}.jpg", picture, *_colours(n + 3))],
        )
        seeded.pending[f"conflict{n}"] = next_id + 1
        next_id += 2
    for n in range(15):  # no conflict: imports at once (each test its own)
        path = files / f"fresh_{n}.safetensors"
        make_model_file(path, size=8192, seed=200 + n)
        legacy.add_model(
            next_id,
            path=str(path),
            type="checkpoint",
            name=f"Fresh Pending {n}",
            tags=[1],
            images=[make_picture(legacy.images_dir / f"f{n}.png", picture, *_colours(n + 2))],
        )
        seeded.pending[f"fresh{n}"] = next_id
        next_id += 1
    legacy.add_model(
        next_id, path=str(files / "gone.safetensors"), type="lora", name="Gone Pending"
    )
    seeded.pending["gone"] = next_id
    # For the queue's filters (tests/ui/test_pending_filters.py), which the other tests leave
    # alone: a second file with a library model's content, never hashed before those tests
    # check it; a fresh one to import and a second missing one to discard.
    make_model_file(files / "twin_0.safetensors", size=8192, seed=100)  # conflict_0's bytes
    make_model_file(files / "spare.safetensors", size=8192, seed=300)
    for role, name, path, n in [
        ("twin", "Twin of Conflict Zero", files / "twin_0.safetensors", 6),
        ("spare", "Spare Pending", files / "spare.safetensors", 7),
        ("lost", "Lost Pending", files / "lost.safetensors", None),
    ]:
        next_id += 1
        images = (
            []
            if n is None
            else [make_picture(legacy.images_dir / f"{role}.png", picture, *_colours(n))]
        )
        legacy.add_model(next_id, path=str(path), type="lora", name=name, tags=[2], images=images)
        seeded.pending[role] = next_id
