"""Edits racing imports, uploads, delete-and-shift and other edits of the same model, through
the real app: whatever overlaps, the library ends as if the requests had run one after the
other, never a mix.

How the overlap is forced, without sleeps: the file pool holds every `apply_file_ops` job at a
gate, so the first request commits and then waits with the model's lock held, its files not
yet moved. The second request is sent and the test waits until it queues for that lock (or
has answered without needing it); then the gate opens. The same two requests are run one after
the other on an identical copy of the library, and both libraries must end the same: the same
answers, the same record, the same image in each seq, and `modelshelf check` clean.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.integrity import check_library
from modelshelf.storage import fileops
from tests.conftest import Client, migrate, shelf_of
from tests.editing import UNKNOWN, A, build, call, get_model, rows, width_for
from tests.factories import LegacyLibrary, image_size, make_image, make_model_file

PENDING = 10  # a pending model with A's content and an image 100 px wide


@dataclass
class Context:
    client: Client
    sha: str  # the model every request is about
    etag: str  # its version before the requests
    upload: bytes


Op = Callable[[Context], Awaitable[tuple[int, Any]]]


async def upload(ctx: Context) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("sha256", ctx.sha)
    form.add_field("image", ctx.upload, filename="u.png", content_type="image/png")
    response = await ctx.client.post("/api/images/upload", data=form)
    return response.status, await response.json()


async def delete_image(ctx: Context) -> tuple[int, Any]:
    return (await call(ctx.client, "DELETE", f"/api/images/{ctx.sha}_1.webp"))[:2]


async def reorder(ctx: Context) -> tuple[int, Any]:
    order = [f"{ctx.sha}_{s}.webp" for s in (3, 2, 1, 0)]
    body = {"hash": ctx.sha, "order": order}
    return (await call(ctx.client, "POST", "/api/images/reorder", body))[:2]


async def patch(ctx: Context) -> tuple[int, Any]:
    body = {"name": "Patched", "meta_json": {"k": "v"}}
    path = f"/api/models/{ctx.sha}"
    return (await call(ctx.client, "PATCH", path, body, **{"If-Match": ctx.etag}))[:2]


async def put_tags(ctx: Context) -> tuple[int, Any]:
    body = {"tags": ["new", "lora"]}
    return (await call(ctx.client, "PUT", f"/api/models/{ctx.sha}/tags", body))[:2]


async def tag_many(ctx: Context) -> tuple[int, Any]:
    body = {"hashes": [ctx.sha, UNKNOWN], "add": ["many"], "remove": ["anime"]}
    return (await call(ctx.client, "POST", "/api/models/tags", body))[:2]


async def edit_many(ctx: Context) -> tuple[int, Any]:
    body = {"hashes": [ctx.sha, UNKNOWN], "type": "lycoris", "meta_json": {"base_model": "X"}}
    answer = (await call(ctx.client, "POST", "/api/models/edit", body))[:2]
    assert answer[0] == 200, answer  # a model deleted meanwhile is not_found, not an error
    return answer


async def merge_tags(ctx: Context) -> tuple[int, Any]:
    return (await call(ctx.client, "POST", "/api/tags/2/merge", {"into": 1}))[:2]  # anime -> lora


async def delete_model(ctx: Context) -> tuple[int, Any]:
    return (await call(ctx.client, "DELETE", f"/api/models/{ctx.sha}"))[:2]


async def delete_many(ctx: Context) -> tuple[int, Any]:
    body = {"hashes": [UNKNOWN, ctx.sha]}
    return (await call(ctx.client, "POST", "/api/models/delete", body))[:2]


def importing(strategy: str) -> Op:
    async def run(ctx: Context) -> tuple[int, Any]:
        body = {"id": PENDING, "conf_strategy": strategy}
        return (await call(ctx.client, "POST", "/api/migration/import_a_model", body))[:2]

    run.__name__ = f"import_{strategy}"
    return run


# The first request moves files (so it can be held after its commit); the second is an edit,
# or an upload / delete-and-shift / import after an edit.
FIRST: list[Op] = [
    upload,
    delete_image,
    importing("merge"),
    importing("override"),
    reorder,
    delete_model,
    delete_many,
]
SECOND: list[Op] = [
    patch,
    put_tags,
    tag_many,
    edit_many,
    merge_tags,
    reorder,
    delete_model,
    delete_many,
]
PAIRS = [(f, s) for f in FIRST for s in SECOND] + [
    (reorder, upload),
    (reorder, delete_image),
    (reorder, importing("merge")),
    (delete_model, upload),
    (delete_model, importing("override")),
    (delete_many, upload),
    (delete_many, importing("override")),
]


class PoolGate:
    """Holds the jobs of a pool that a gated_pool picks until `open()`; `reached` is set when
    the first one arrives."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.opened = threading.Event()
        self.reached = threading.Event()

    def open(self) -> None:
        self.opened.set()

    async def wait_reached(self) -> None:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.reached.wait, 30):
            raise AssertionError(f"no {self.what}")


@contextmanager
def pool_jobs(pool: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the functions given to `pool` meanwhile (each still runs there; a partial
    is named by its function)."""
    submit, names = pool.submit, []

    def seen_submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        names.append(getattr(getattr(fn, "func", fn), "__name__", repr(fn)))
        return submit(fn, *args, **kwargs)

    monkeypatch.setattr(pool, "submit", seen_submit)
    try:
        yield names
    finally:
        monkeypatch.undo()


@contextmanager
def gated_pool(
    pool: Any, monkeypatch: pytest.MonkeyPatch, picks: Callable[[Any], bool], gate: PoolGate
) -> Iterator[PoolGate]:
    """Holds the jobs of `pool` that `picks(fn)` chooses at `gate` (a real pool, its real
    jobs: only their start waits)."""
    submit = pool.submit

    def gated_submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not picks(fn):
            return submit(fn, *args, **kwargs)

        def held() -> Any:
            gate.reached.set()
            if not gate.opened.wait(timeout=30):
                raise TimeoutError("the test never opened the gate")
            return fn(*args, **kwargs)

        return submit(held)

    monkeypatch.setattr(pool, "submit", gated_submit)
    try:
        yield gate
    finally:
        gate.open()  # never leave a worker blocked, even when a test failed
        monkeypatch.undo()


@contextmanager
def gated_file_ops(shelf: Shelf, monkeypatch: pytest.MonkeyPatch) -> Iterator[PoolGate]:
    """Holds the file pool's `apply_file_ops` jobs: `reached` once the first change has
    committed and holds its locks."""

    def picks(fn: Any) -> bool:
        return fn is fileops.apply_file_ops

    gate = PoolGate("change reached its file operations")
    with gated_pool(shelf.executors.files, monkeypatch, picks, gate) as held:
        yield held


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run (yielding, never sleeping a set time) until `condition` holds, for up
    to 30 s. A deadline, not a number of turns: on a machine other processes keep busy, the
    threads the condition waits for may get the CPU after any number of the loop's turns
    (500,000 turns were not always enough at a load average of 6 on 2 cores)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened within 30 s: {what}")


async def state(client: Client, data_dir: Path, sha: str) -> dict[str, Any]:
    """What a client and the disk see of a model."""
    response = await client.get(f"/api/models/{sha}")
    record = await response.json()
    sizes = []
    if response.status == 200:
        folder = data_dir / "images"
        sizes = [image_size(folder / f"{sha}_{s}_high.webp") for s in range(len(record["images"]))]
    history = await (await client.get(f"/api/models/{sha}/history")).json()
    return {
        "status": response.status,
        "record": record,
        "sizes": sizes,
        "history": [(e["action"], e["before"]) for e in history.get("entries", [])],
        "check": check_library(data_dir),
    }


def answer_of(result: tuple[int, Any]) -> tuple[int, Any]:
    """An answer without what differs between two identical runs (ETags, error wording)."""
    status, body = result
    if isinstance(body, dict) and "error" in body:
        return status, body["error"]
    return status, body


_TEMPLATES: dict[str, tuple[Path, str]] = {}


async def library_copy(
    aiohttp_client: Any, tmp_path_factory: pytest.TempPathFactory, target: Path
) -> tuple[Client, str]:
    """A library in `target` and the SHA256 of its model M: M has tags lora and anime and
    4 images (image i is 40 + 4i px wide); pending model PENDING has M's content and an image
    100 px wide. Built once through the real app, then copied."""
    if "races" not in _TEMPLATES:
        root = tmp_path_factory.mktemp("races")
        template = root / "data"
        builder: Client = await aiohttp_client(create_app(_settings(template)))
        legacy = LegacyLibrary(template / "legacy")
        sha = make_model_file(root / "models" / "m.safetensors", seed=42)
        make_model_file(root / "models" / "again.safetensors", seed=42)
        legacy.add_tag(1, "lora")
        legacy.add_tag(2, "anime")
        pictures = [legacy.image(f"m{i}.png", width=width_for(i), height=30) for i in range(4)]
        legacy.add_model(
            1,
            hash_hex=sha,
            path=str(root / "models" / "m.safetensors"),
            name="Alpha",
            type="lora",
            tags=[1, 2],
            images=pictures,
        )
        legacy.add_model(
            PENDING,
            path=str(root / "models" / "again.safetensors"),
            name="",
            type="",
            images=[legacy.image("pending.png", width=100, height=70)],
        )
        await migrate(builder, legacy)
        await builder.close()
        _TEMPLATES["races"] = (template, sha)
    template, sha = _TEMPLATES["races"]
    shutil.copytree(template, target, symlinks=True)
    client: Client = await aiohttp_client(create_app(_settings(target)))
    return client, sha


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, workers=2, read_connections=2).resolve_paths()


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=lambda op: op.__name__)
async def test_racing_requests_end_as_if_run_one_after_the_other(
    aiohttp_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: Op,
    second: Op,
) -> None:
    picture = make_image(tmp_path / "upload.png", width=120, height=20).read_bytes()

    raced, sha = await library_copy(aiohttp_client, tmp_path_factory, tmp_path / "raced")
    ctx = Context(raced, sha, (await get_model(raced, sha))[1], picture)
    shelf = shelf_of(raced)
    with gated_file_ops(shelf, monkeypatch) as gate:
        one = asyncio.create_task(first(ctx))
        await gate.wait_reached()
        two = asyncio.create_task(second(ctx))
        await until(lambda: shelf.model_locks.waiting(sha) > 0 or two.done(), "a queued request")
        assert not one.done()
        gate.open()
        race = [await one, await two]

    serial, _ = await library_copy(aiohttp_client, tmp_path_factory, tmp_path / "serial")
    ctx = Context(serial, sha, (await get_model(serial, sha))[1], picture)
    in_order = [await first(ctx), await second(ctx)]

    assert [answer_of(r) for r in race] == [answer_of(r) for r in in_order]
    raced_state = await state(raced, tmp_path / "raced", sha)
    assert raced_state == await state(serial, tmp_path / "serial", sha)
    assert raced_state["check"] == []


async def test_two_patches_with_the_same_etag_one_wins_one_is_412(
    client: Client, legacy: LegacyLibrary
) -> None:
    await build(client, legacy)
    _, etag = await get_model(client, A)
    results = await asyncio.gather(
        *(
            call(client, "PATCH", f"/api/models/{A}", {"name": f"n{i}"}, **{"If-Match": etag})
            for i in range(8)
        )
    )
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] + [412] * 7
    winner = next(r[1]["name"] for r in results if r[0] == 200)
    assert (await get_model(client, A))[0]["name"] == winner


async def test_concurrent_tag_edits_and_tag_deletes_never_leave_a_link_to_a_deleted_tag(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    await build(client, legacy)
    await asyncio.gather(
        call(client, "PUT", f"/api/models/{A}/tags", {"tags": ["anime", "x"]}),
        call(client, "DELETE", "/api/tags/2"),
        call(client, "PUT", f"/api/models/{A}/tags", {"tags": ["anime"]}),
        call(client, "PATCH", "/api/tags/1", {"name": "lora2"}),
    )
    assert rows(
        data_dir, "SELECT count(*) FROM model_tags WHERE tag_id NOT IN (SELECT id FROM tags)"
    ) == [(0,)]
    record, _ = await get_model(client, A)
    assert all(t["name"] for t in record["tags"])
