"""The rendition cache through the real app: a rendition served once is served again from
memory, with the same answer (status, headers, bytes) as from disk, and no change to the
images folder, whichever way it is made, leaves it serving what is no longer there."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest

from modelshelf.rendition_cache import CachedFile, RenditionCache
from modelshelf.renditions import qualities
from modelshelf.storage.change import Change
from modelshelf.web import images_api
from tests.conftest import Client, MakeClient, assert_error_body, migrate, post_import, shelf_of
from tests.editing import A, B, build, width_for
from tests.factories import LegacyLibrary, image_size, make_image, make_model_file

QUALITIES = qualities()
Action = Callable[[Client, Path], Awaitable[None]]


def rendition(data_dir: Path, sha256: str, seq: int, quality: str = "high") -> Path:
    return data_dir / "images" / f"{sha256}_{seq}_{quality}.webp"


def disk_etag(path: Path) -> str:
    info = path.stat()
    return f'"{info.st_mtime_ns:x}-{info.st_size:x}"'


async def served(client: Client, sha256: str, seq: int, quality: str) -> tuple[int, bytes, str]:
    response = await client.get(f"/api/images/{sha256}_{seq}.webp", params={"quality": quality})
    return response.status, await response.read(), response.headers.get("ETag", "")


async def assert_served_as_on_disk(client: Client, data_dir: Path, sha256: str) -> None:
    """Every name of seq 0..5 in every quality answers what is on disk now: the file's bytes
    and ETag, or 404 for a file that is not there."""
    for seq in range(6):
        for quality in QUALITIES:
            status, body, etag = await served(client, sha256, seq, quality)
            path = rendition(data_dir, sha256, seq, quality)
            if path.exists():
                assert (status, body, etag) == (200, path.read_bytes(), disk_etag(path))
            else:
                assert status == 404, (seq, quality)


def widths(data_dir: Path, sha256: str) -> list[int]:
    seqs = sorted(int(p.name[65:].split("_")[0]) for p in data_dir.glob(f"images/{sha256}_*_high*"))
    return [image_size(rendition(data_dir, sha256, s))[0] for s in seqs]


# --- what a hit is ----------------------------------------------------------------------------


async def test_a_rendition_served_once_is_served_again_from_memory(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    await build(client, legacy)
    first = await served(client, A, 1, "medium")
    # Gone by hand (not through the service): only memory can answer now.
    rendition(data_dir, A, 1, "medium").unlink()

    assert await served(client, A, 1, "medium") == first
    assert len(shelf_of(client).rendition_cache) == 1


async def test_with_no_memory_every_rendition_is_read_from_disk(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    client = await make_client(image_cache_mb=0)
    await build(client, legacy)
    assert (await served(client, A, 1, "medium"))[0] == 200
    rendition(data_dir, A, 1, "medium").unlink()

    assert (await served(client, A, 1, "medium"))[0] == 404
    assert len(shelf_of(client).rendition_cache) == 0


async def test_a_file_over_an_eighth_of_the_budget_is_served_from_disk(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    client = await make_client(image_cache_mb=1)  # files over 128 KiB are never held
    legacy.add_model(1, hash_hex=A, images=[legacy.image("big.png", width=1500, height=1500)])
    await migrate(client, legacy)
    big = rendition(data_dir, A, 0)
    big.write_bytes(big.read_bytes() + bytes(200_000))  # a large file, as a big image makes
    status, body, _ = await served(client, A, 0, "high")
    assert (status, len(body)) == (200, big.stat().st_size)

    assert len(shelf_of(client).rendition_cache) == 0


# The answers a client can get: from memory they must be those from disk, header for header.
REQUESTS = {
    "GET": ("GET", {}),
    "HEAD": ("HEAD", {}),
    "If-None-Match, same ETag": ("GET", {"If-None-Match": "{etag}"}),
    "If-None-Match, other ETag": ("GET", {"If-None-Match": '"other"'}),
    "If-None-Match *": ("GET", {"If-None-Match": "*"}),
    "If-Modified-Since, its date": ("GET", {"If-Modified-Since": "{last_modified}"}),
    "If-Modified-Since, a year ago": ("GET", {"If-Modified-Since": "{year_ago}"}),
    "If-Match, other ETag": ("GET", {"If-Match": '"other"'}),
    "If-Match, same ETag": ("GET", {"If-Match": "{etag}"}),
    "If-Unmodified-Since, a year ago": ("GET", {"If-Unmodified-Since": "{year_ago}"}),
    "HEAD, If-None-Match": ("HEAD", {"If-None-Match": "{etag}"}),
    # Ranges are answered from the file whatever the cache holds (the disk path's rules).
    "Range": ("GET", {"Range": "bytes=2-9"}),
    "Range past the end": ("GET", {"Range": "bytes=999999-"}),
}
COMPARED = (
    "Content-Type",
    "Content-Length",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Accept-Ranges",
    "Content-Range",
)


async def answer(
    client: Client, method: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    response = await client.request(method, f"/api/images/{A}_1.webp", headers=headers)
    kept = {name: response.headers[name] for name in COMPARED if name in response.headers}
    return response.status, kept, await response.read()


async def _no_file_response(*args: object, **kwargs: object) -> None:
    raise AssertionError("answered from the file, not from memory")


@pytest.mark.parametrize("case", list(REQUESTS), ids=list(REQUESTS))
async def test_an_answer_from_memory_is_the_answer_from_disk(
    make_client: MakeClient, legacy: LegacyLibrary, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = await make_client()
    await build(cached, legacy)
    first = await cached.get(f"/api/images/{A}_1.webp")  # now held in memory
    assert len(shelf_of(cached).rendition_cache) == 1
    method, template = REQUESTS[case]
    values = {
        "etag": first.headers["ETag"],
        "last_modified": first.headers["Last-Modified"],
        "year_ago": formatdate(time.time() - 365 * 86400, usegmt=True),
    }
    headers = {name: value.format(**values) for name, value in template.items()}
    with monkeypatch.context() as patched:
        if "Range" not in headers:  # the answer must not touch the file
            patched.setattr(images_api, "file_response", _no_file_response)
        from_memory = await answer(cached, method, headers)
    await cached.close()
    uncached = await make_client(image_cache_mb=0)  # the same data directory, from disk

    assert from_memory == await answer(uncached, method, headers)
    if from_memory[0] >= 400:
        assert_error_body(json.loads(from_memory[2]), from_memory[0])


# --- every change is seen at once -------------------------------------------------------------


async def upload(client: Client, sha256: str, width: int, tmp: Path) -> None:
    form = aiohttp.FormData()
    form.add_field("sha256", sha256)
    picture = make_image(tmp / f"upload_{width}.png", width, 30).read_bytes()
    form.add_field("image", picture, filename="new.png", content_type="image/png")
    response = await client.post("/api/images/upload", data=form)
    assert response.status == 200, await response.text()


async def request(client: Client, method: str, path: str, body: object = None) -> None:
    response = await client.request(method, path, json=body)
    assert response.status == 200, await response.text()


async def delete_first(client: Client, tmp: Path) -> None:
    await request(client, "DELETE", f"/api/images/{A}_0.webp")


async def delete_last(client: Client, tmp: Path) -> None:
    await request(client, "DELETE", f"/api/images/{A}_2.webp")


async def reorder(client: Client, tmp: Path) -> None:
    order = [f"{A}_{s}.webp" for s in (2, 0, 1)]
    await request(client, "POST", "/api/images/reorder", {"hash": A, "order": order})


async def add_one(client: Client, tmp: Path) -> None:
    await upload(client, A, 70, tmp)


async def replace_the_last(client: Client, tmp: Path) -> None:
    await delete_last(client, tmp)
    await upload(client, A, 70, tmp)  # the same name, other bytes


async def delete_the_model(client: Client, tmp: Path) -> None:
    await request(client, "DELETE", f"/api/models/{A}")


CHANGES: dict[str, tuple[Action, list[int]]] = {
    "delete seq 0, the later ones shift": (delete_first, [width_for(1), width_for(2)]),
    "delete the last": (delete_last, [width_for(0), width_for(1)]),
    "reorder": (reorder, [width_for(2), width_for(0), width_for(1)]),
    "upload": (add_one, [width_for(0), width_for(1), width_for(2), 70]),
    "delete, then upload under that name": (replace_the_last, [width_for(0), width_for(1), 70]),
    "delete the model": (delete_the_model, []),
}


@pytest.mark.parametrize("case", list(CHANGES), ids=list(CHANGES))
async def test_after_a_change_every_name_serves_what_is_on_disk(
    client: Client, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path, case: str
) -> None:
    await build(client, legacy)
    await assert_served_as_on_disk(client, data_dir, A)  # everything there is now held
    action, expected = CHANGES[case]

    await action(client, tmp_path)

    assert widths(data_dir, A) == expected
    await assert_served_as_on_disk(client, data_dir, A)
    await assert_served_as_on_disk(client, data_dir, B)


async def seed_conflict(legacy: LegacyLibrary, models_dir: Path) -> str:
    """Model 1 (one image, 40 wide) and pending model 2 of the same content (image 50 wide)."""
    path, copy = models_dir / "same.safetensors", models_dir / "copy.safetensors"
    sha = make_model_file(path, seed=7)
    assert make_model_file(copy, seed=7) == sha
    legacy.add_model(
        1, hash_hex=sha, path=str(path), images=[legacy.image("a.png", width=40, height=30)]
    )
    legacy.add_model(2, path=str(copy), images=[legacy.image("b.png", width=50, height=30)])
    return sha


@pytest.mark.parametrize(
    ("strategy", "expected"), [("override", [50]), ("merge", [40, 50]), ("delete", [40])]
)
async def test_after_an_import_every_name_serves_what_is_on_disk(
    client: Client,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    strategy: str,
    expected: list[int],
) -> None:
    sha = await seed_conflict(legacy, models_dir)
    await migrate(client, legacy)
    await assert_served_as_on_disk(client, data_dir, sha)

    status, body = await post_import(client, 2, strategy)

    assert status == 200, body
    assert widths(data_dir, sha) == expected
    await assert_served_as_on_disk(client, data_dir, sha)


# Every writer goes through the unit of work: each kind of file operation it carries out.
async def unlink_seq_0(change: Change, client: Client) -> None:
    change.unlink(rendition(shelf_of(client).settings.data_dir, A, 0))


async def move_over_seq_0(change: Change, client: Client) -> None:
    data_dir = shelf_of(client).settings.data_dir
    staged = shelf_of(client).changes.staging_dir / "other.webp"
    shutil.copyfile(rendition(data_dir, B, 0), staged)
    change.move(staged, rendition(data_dir, A, 0))


async def swap_seqs_0_and_1(change: Change, client: Client) -> None:
    await change.renumber(A, {0: 1, 1: 0}, [])


@pytest.mark.parametrize("operation", [unlink_seq_0, move_over_seq_0, swap_seqs_0_and_1])
async def test_every_file_operation_of_a_change_drops_what_memory_holds(
    client: Client,
    legacy: LegacyLibrary,
    data_dir: Path,
    operation: Callable[[Change, Client], Awaitable[None]],
) -> None:
    await build(client, legacy)
    await assert_served_as_on_disk(client, data_dir, A)
    before = rendition(data_dir, A, 0).read_bytes()

    async with shelf_of(client).changes.change(lock=[A]) as change:
        await operation(change, client)

    path = rendition(data_dir, A, 0)
    assert not path.exists() or path.read_bytes() != before
    await assert_served_as_on_disk(client, data_dir, A)


# --- the cache itself -------------------------------------------------------------------------


def entry(size: int, mtime_ns: int = 1_700_000_000_000_000_000) -> CachedFile:
    return CachedFile.of(bytes(size), mtime_ns)


def test_a_read_begun_before_a_change_is_not_kept() -> None:
    cache = RenditionCache(1024 * 1024)
    generation = cache.generation  # a read from disk begins
    cache.forget([A])  # a change to any model ends meanwhile
    cache.put((A, 0, "high"), entry(10), generation)

    assert cache.get((A, 0, "high")) is None
    cache.put((A, 0, "high"), entry(10), cache.generation)
    assert cache.get((A, 0, "high")) is not None


def test_forgetting_a_model_drops_all_of_it_and_nothing_else() -> None:
    cache = RenditionCache(1024 * 1024)
    for key in [(A, 0, "high"), (A, 3, "low"), (B, 0, "high")]:
        cache.put(key, entry(100), cache.generation)

    cache.forget([A])

    assert [cache.get(k) is not None for k in [(A, 0, "high"), (A, 3, "low"), (B, 0, "high")]] == [
        False,
        False,
        True,
    ]
    assert cache.held == 100


def test_memory_stays_within_the_budget_dropping_the_least_recently_served() -> None:
    cache = RenditionCache(8 * 1000)  # files up to 1000 bytes
    for seq in range(8):
        cache.put((A, seq, "high"), entry(1000), cache.generation)
    cache.get((A, 0, "high"))  # served again: now the most recent

    cache.put((B, 0, "high"), entry(1000), cache.generation)
    cache.put((B, 1, "high"), entry(1001), cache.generation)  # over the bound: not held

    assert cache.held <= cache.budget
    assert cache.get((A, 1, "high")) is None  # the least recently served went
    assert cache.get((A, 0, "high")) is not None
    assert cache.get((B, 0, "high")) is not None
    assert cache.get((B, 1, "high")) is None


@pytest.mark.parametrize(("mtime_ns", "size"), [(1_700_000_000_123_456_789, 5), (10**18, 0)])
def test_validators_are_those_fileresponse_makes(mtime_ns: int, size: int) -> None:
    cached = entry(size, mtime_ns)
    response = aiohttp.web.StreamResponse()
    response.last_modified = mtime_ns / 1e9
    assert cached.etag == f"{mtime_ns:x}-{size:x}"
    assert cached.last_modified == response.headers["Last-Modified"]
