"""A change whose files cannot be put in place after its commit (the images folder refuses
writes for a while): the change stands and its caller hears of success; later changes that
move or remove files are refused (503, nothing changed) until the earlier files are in place,
which every change tries again first; so no file is ever moved out of commit order, and a
restart finds the images as the acknowledged changes left them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelshelf.integrity import check_library
from tests.conftest import Client, MakeClient, assert_error_body, read_only_file
from tests.factories import LegacyLibrary, fake_sha, image_size, query

SHA = fake_sha(401)
WIDTHS = [40, 44, 48]  # image i is 40 + 4i px wide: the files say which image they are


def build(data_dir: Path, legacy: LegacyLibrary) -> None:
    images = [legacy.image(f"m{i}.png", width=w, height=30) for i, w in enumerate(WIDTHS)]
    legacy.add_model(1, hash_hex=SHA, images=images)
    legacy.migrate_with_cli(data_dir, data_dir / "no-config")


def widths(data_dir: Path) -> list[int]:
    found = sorted((data_dir / "images").glob(f"{SHA}_*_high.webp"))
    return [image_size(data_dir / "images" / f"{SHA}_{s}_high.webp")[0] for s in range(len(found))]


async def send(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await client.request(method, path, json=body)
    return response.status, await response.json()


def names(*seqs: int) -> list[str]:
    return [f"{SHA}_{s}.webp" for s in seqs]


async def test_a_change_whose_files_fail_stands_and_later_file_changes_wait_for_them(
    make_client: MakeClient, data_dir: Path, legacy: LegacyLibrary
) -> None:
    build(data_dir, legacy)
    client = await make_client()
    with read_only_file(data_dir / "images"):
        # Committed; its renumber cannot move the files out of the images folder.
        deleted = {"status": "success", "deleted": f"{SHA}_0.webp"}
        assert await send(client, "DELETE", f"/api/images/{SHA}_0.webp") == (200, deleted)
        listed = await send(client, "POST", "/api/images/get_sample_imgs", {"hash": SHA})
        assert listed == (200, names(0, 1))
        status, body = await send(
            client, "POST", "/api/images/reorder", {"hash": SHA, "order": names(1, 0)}
        )
        assert status == 503
        assert_error_body(body, 503, "earlier change could not be put in place yet")
        # A change of rows alone does not wait.
        assert (await send(client, "PATCH", f"/api/models/{SHA}", {"name": "kept"}))[0] == 200
        assert widths(data_dir) == WIDTHS  # nothing moved yet
    # The folder takes writes again: the next change first finishes the earlier one.
    status, _ = await send(
        client, "POST", "/api/images/reorder", {"hash": SHA, "order": names(1, 0)}
    )
    assert status == 200
    assert widths(data_dir) == [48, 44]
    assert check_library(data_dir) == []
    assert query(data_dir, "SELECT count(*) FROM file_journal") == [(0,)]
    await client.close()

    again = await make_client()  # start-up recovery runs: nothing is left to replay
    assert widths(data_dir) == [48, 44]
    record = await (await again.get(f"/api/models/{SHA}")).json()
    assert (record["name"], record["images"]) == ("kept", names(0, 1))
    history = await (await again.get(f"/api/models/{SHA}/history")).json()
    assert [e["action"] for e in history["entries"]][:2] == ["reorder", "edit"]


async def test_files_left_unfinished_at_exit_are_put_in_place_at_the_next_start(
    make_client: MakeClient, data_dir: Path, legacy: LegacyLibrary
) -> None:
    build(data_dir, legacy)
    client = await make_client()
    with read_only_file(data_dir / "images"):
        assert (await send(client, "DELETE", f"/api/images/{SHA}_1.webp"))[0] == 200
        await client.close()
    await make_client()
    assert widths(data_dir) == [40, 48]
    assert check_library(data_dir) == []
