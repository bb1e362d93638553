"""What the pending queue tells about each model before it is imported: `missing` (its model
file is not there, or is no file this service can read) and `conflict` (a model in the library
has its file's SHA256; null while that is not known), found without reading a model file, so
the queue can be narrowed to the conflicts, the files gone and the models that import at once.
They are there when asked for (`?checks=true`, as the web UI asks): each costs a stat, and a
busy library's clients that list the queue often need not pay it. The record's other fields
are the contract's, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Client, migrate, post_import
from tests.factories import Library, make_model_file, query

QUEUE = "/api/migration/pending_models"
PENDING = f"{QUEUE}?checks=true"
PREVIEW = "/api/migration/preview_import"
QUEUE_FIELDS = ("missing", "conflict")


async def listed(client: Client) -> dict[int, dict[str, Any]]:
    response = await client.get(PENDING)
    assert response.status == 200
    return {m["id"]: m for m in (await response.json())["models"]}


def states(records: dict[int, dict[str, Any]]) -> dict[int, tuple[bool, bool | None]]:
    return {i: (m["missing"], m["conflict"]) for i, m in records.items()}


async def preview(client: Client, pending_id: int) -> int:
    response = await client.post(PREVIEW, json={"id": pending_id, "conf_strategy": None})
    await response.read()
    return response.status


async def test_the_queue_says_which_files_are_gone_and_which_conflicts_are_known(
    client: Client, lib: Library, data_dir: Path
) -> None:
    taken = lib.model(1, content=1, hashed=True, name="In the library")
    lib.model(2, content=1, name="Same content, never hashed here")
    lib.model(3, content=3, name="New content")
    lib.model(4, content=4, name="File gone")
    lib.model(5, content=1, name="A folder where its file was")
    lib.legacy.add_model(6, hash_hex=taken, path=str(lib.models_dir / "m6.safetensors"))
    make_model_file(lib.models_dir / "m6.safetensors", seed=1)  # a hashed duplicate
    lib.legacy.add_model(7, name="A path where nothing is")
    await migrate(client, lib.legacy)
    (lib.models_dir / "m4.safetensors").unlink()
    (lib.models_dir / "m5.safetensors").unlink()
    (lib.models_dir / "m5.safetensors").mkdir()

    assert states(await listed(client)) == {
        2: (False, None),  # its content is not known until its file is hashed
        3: (False, None),
        4: (True, None),
        5: (True, None),
        6: (False, True),  # the SHA256 it carries is a model's
        7: (True, None),
    }
    assert query(data_dir, "SELECT path FROM hash_cache") == []  # nothing read


async def test_a_file_hashed_once_tells_the_queue_whether_it_conflicts(
    client: Client, lib: Library
) -> None:
    lib.model(1, content=1, hashed=True)
    lib.model(2, content=1)
    lib.model(3, content=3)
    await migrate(client, lib.legacy)

    assert (await preview(client, 2), await preview(client, 3)) == (409, 200)

    assert states(await listed(client)) == {2: (False, True), 3: (False, False)}


async def test_a_file_changed_since_it_was_hashed_is_not_known_again(
    client: Client, lib: Library
) -> None:
    lib.model(1, content=1, hashed=True)
    lib.model(2, content=1)
    await migrate(client, lib.legacy)
    assert await preview(client, 2) == 409
    make_model_file(lib.models_dir / "m2.safetensors", size=128 * 1024, seed=2)

    assert states(await listed(client)) == {2: (False, None)}
    assert await preview(client, 2) == 200
    assert states(await listed(client)) == {2: (False, False)}


async def test_a_hash_the_record_carries_is_not_trusted_once_its_file_was_hashed_otherwise(
    client: Client, lib: Library
) -> None:
    taken = lib.model(1, content=1, hashed=True)
    lib.legacy.add_model(2, hash_hex=taken, path=str(lib.models_dir / "m2.safetensors"))
    make_model_file(lib.models_dir / "m2.safetensors", seed=9)  # not the content it claims
    await migrate(client, lib.legacy)
    assert states(await listed(client)) == {2: (False, True)}  # all that is known: its hash

    assert await preview(client, 2) == 200
    assert states(await listed(client)) == {2: (False, False)}
    make_model_file(lib.models_dir / "m2.safetensors", size=96 * 1024, seed=10)

    assert states(await listed(client)) == {2: (False, None)}


async def test_a_conflict_resolved_by_deleting_the_library_model_is_no_longer_one(
    client: Client, lib: Library
) -> None:
    taken = lib.model(1, content=1, hashed=True)
    lib.model(2, content=1)
    await migrate(client, lib.legacy)
    assert (await post_import(client, 2))[0] == 409
    assert states(await listed(client)) == {2: (False, True)}

    assert (await client.delete(f"/api/models/{taken}")).status == 200

    assert states(await listed(client)) == {2: (False, False)}


async def test_the_record_is_otherwise_the_one_the_contract_describes(
    client: Client, lib: Library
) -> None:
    lib.tag(4, "anime")
    lib.model(2, content=2, tags=[4], name="Two")
    await migrate(client, lib.legacy)
    record = (await listed(client))[2]

    plain = (await (await client.get(QUEUE)).json())["models"][0]
    discarded = await (await client.delete(f"{QUEUE}/2")).json()

    assert {k: v for k, v in record.items() if k not in QUEUE_FIELDS} == discarded
    assert set(record) - set(discarded) == set(QUEUE_FIELDS)
    assert plain == discarded  # asked without checks, the queue is the contract's records
