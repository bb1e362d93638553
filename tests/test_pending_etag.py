"""`GET /api/migration/pending_models` is tagged by the queue's generation: the Pending page
asks it every few seconds while shown (for models added or taken elsewhere), and while the
queue is as it was the answer is a 304 without a body, given without reading the queue. Every
change of a pending model's record moves the tag: a stage 1 run, an import, a discard, its tags
or a tag's name, and a change another program makes to the database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import Client, migrate, post_import
from tests.factories import Library

QUEUE = "/api/migration/pending_models"


async def tag_of(client: Client) -> str:
    response = await client.get(QUEUE)
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-cache"  # kept, but asked about each time
    etag = response.headers["ETag"]
    assert etag.startswith('W/"'), etag
    return etag


async def unchanged(client: Client, etag: str) -> bool:
    """Whether the queue is still the one `etag` tags (a 304 without a body)."""
    response = await client.get(QUEUE, headers={"If-None-Match": etag})
    body = await response.read()
    if response.status == 304:
        assert body == b""
        assert response.headers["ETag"] == etag
        return True
    assert response.status == 200, body
    assert response.headers["ETag"] != etag
    return False


async def library_tag_id(client: Client, name: str) -> int:
    tags: list[dict[str, Any]] = (await (await client.get("/api/tags")).json())["tags"]
    return next(t["id"] for t in tags if t["name"] == name)


async def test_the_queue_is_answered_304_until_a_pending_model_changes(
    client: Client, lib: Library, data_dir: Path
) -> None:
    anime = lib.tag(1, "anime")
    for n in (1, 2, 3):
        lib.model(n, content=n, tags=[anime])
    await migrate(client, lib.legacy)
    etag = await tag_of(client)
    assert await unchanged(client, etag)
    # Any version ("*"): the page takes the queue's tag so before it reads the queue.
    anyone = await client.get(QUEUE, headers={"If-None-Match": "*"})
    assert (anyone.status, anyone.headers["ETag"], await anyone.read()) == (304, etag, b"")

    lib.model(4, content=4)  # a later stage 1 run brings one more
    await migrate(client, lib.legacy)
    assert not await unchanged(client, etag)

    etag = await tag_of(client)
    assert (await client.delete(f"{QUEUE}/1")).status == 200  # discarded
    assert not await unchanged(client, etag)

    etag = await tag_of(client)
    assert (await post_import(client, 2))[0] == 200  # imported: out of the queue
    assert not await unchanged(client, etag)

    etag = await tag_of(client)
    tag_id = await library_tag_id(client, "anime")  # which model 3 carries
    assert (await client.patch(f"/api/tags/{tag_id}", json={"name": "manga"})).status == 200
    assert not await unchanged(client, etag)

    etag = await tag_of(client)
    assert (await client.delete(f"/api/tags/{tag_id}")).status == 200  # taken off model 3
    assert not await unchanged(client, etag)

    etag = await tag_of(client)
    with sqlite3.connect(data_dir / "modelshelf.db") as other_program:
        other_program.execute("UPDATE pending_import SET name = 'renamed' WHERE id = 3")
    assert not await unchanged(client, etag)


async def test_what_leaves_the_queue_as_it_was_keeps_its_tag(client: Client, lib: Library) -> None:
    lib.tag(1, "anime")
    lib.model(1, content=1)
    await migrate(client, lib.legacy)
    etag = await tag_of(client)

    # A tag no pending model carries, renamed; a check of the files (its answer is not
    # tagged: a file gone or a model imported changes it without a pending row changing).
    tag_id = await library_tag_id(client, "anime")
    assert (await client.patch(f"/api/tags/{tag_id}", json={"name": "manga"})).status == 200
    checked = await client.get(f"{QUEUE}?checks=true", headers={"If-None-Match": etag})
    assert checked.status == 200
    assert "ETag" not in checked.headers

    assert await unchanged(client, etag)
    assert (await client.get(QUEUE, headers={"If-None-Match": "x"})).status == 400
