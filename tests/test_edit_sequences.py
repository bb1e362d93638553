"""A property of editing, checked on random sequences of edits, reorders, uploads and deletes
applied to one model through the real app: after every step the images are dense (seqs
0..n-1), the image index matches the folder (`modelshelf check` is clean), and history holds
every earlier state of fields, meta_json and tags; at the end, each of those states is
restored and read back."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.integrity import check_library
from tests.conftest import Client
from tests.editing import A, build, call, get_model
from tests.factories import make_image

STEPS = 30
WORDS = ["cat", "dog", "neon", "noir", "retro", " padded ", "Ünïcode"]


def view(record: dict[str, Any]) -> str:
    """What history must be able to put back (the fields, meta_json and tag names), as text
    that can be compared and kept in a set."""
    fields = [record[k] for k in ("path", "name", "type", "size_bytes", "created_at")]
    tags = sorted(t["name"] for t in record["tags"])
    return json.dumps([fields, record["meta_json"], tags], sort_keys=True)


class Steps:
    """The random steps, each a real request about model A."""

    def __init__(self, client: Client, rng: random.Random, tmp_path: Path) -> None:
        self.client = client
        self.rng = rng
        self.tmp_path = tmp_path
        self.uploads = 0

    async def run_one(self) -> str:
        record, _ = await get_model(self.client, A)
        step = self.rng.choice(
            [
                "patch",
                "patch",
                "meta",
                "tags",
                "reorder",
                "upload",
                "delete_image",
                "delete_model",
                "delete_many",
            ]
        )
        await getattr(self, step)(record)
        return step

    async def patch(self, record: dict[str, Any]) -> None:
        body = {self.rng.choice(["name", "type"]): self.rng.choice([*WORDS, None])}
        await self.expect(200, "PATCH", f"/api/models/{A}", body)

    async def meta(self, record: dict[str, Any]) -> None:
        key = self.rng.choice(["description", "trigger_words", "nested", "x"])
        value = self.rng.choice([None, self.rng.choice(WORDS), [self.rng.choice(WORDS)], {"k": 1}])
        await self.expect(200, "PATCH", f"/api/models/{A}", {"meta_json": {key: value}})

    async def tags(self, record: dict[str, Any]) -> None:
        names = self.rng.sample(["lora", "anime", "new", "Style ", "x"], self.rng.randint(0, 3))
        await self.expect(200, "PUT", f"/api/models/{A}/tags", {"tags": names})

    async def reorder(self, record: dict[str, Any]) -> None:
        order = list(record["images"])
        self.rng.shuffle(order)
        await self.expect(200, "POST", "/api/images/reorder", {"hash": A, "order": order})

    async def upload(self, record: dict[str, Any]) -> None:
        self.uploads += 1
        path = make_image(self.tmp_path / f"u{self.uploads}.png", width=60 + self.uploads)
        form = aiohttp.FormData()
        form.add_field("sha256", A)
        form.add_field("image", path.read_bytes(), filename="u.png", content_type="image/png")
        response = await self.client.post("/api/images/upload", data=form)
        assert response.status == 200, await response.text()

    async def delete_image(self, record: dict[str, Any]) -> None:
        if record["images"]:
            await self.expect(200, "DELETE", f"/api/images/{self.rng.choice(record['images'])}")

    async def delete_model(self, record: dict[str, Any]) -> None:
        """Delete the model and bring it back from history (without its images)."""
        await self.expect(200, "DELETE", f"/api/models/{A}")
        await self.restore_deleted()

    async def delete_many(self, record: dict[str, Any]) -> None:
        """The same, through the endpoint that deletes many models at once."""
        answer = await self.expect(200, "POST", "/api/models/delete", {"hashes": [A]})
        assert answer["changed"] == [A], answer
        await self.restore_deleted()

    async def restore_deleted(self) -> None:
        _, history, _ = await call(self.client, "GET", f"/api/models/{A}/history")
        entry = history["entries"][0]
        assert entry["action"] == "delete"
        await self.expect(200, "POST", f"/api/models/{A}/history/{entry['id']}/restore")

    async def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer, _ = await call(self.client, method, path, body)
        assert got == status, (method, path, body, answer)
        return answer


async def history_views(client: Client) -> list[tuple[int, str]]:
    _, history, _ = await call(client, "GET", f"/api/models/{A}/history")
    return [(e["id"], view(e["before"])) for e in history["entries"]]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_random_edits_keep_images_dense_and_every_state_restorable(
    client: Client, legacy: Any, data_dir: Path, tmp_path: Path, seed: int
) -> None:
    await build(client, legacy, images=3)
    steps = Steps(client, random.Random(seed), tmp_path)
    seen = [view((await get_model(client, A))[0])]
    done = []
    for _ in range(STEPS):
        done.append(await steps.run_one())
        record, _ = await get_model(client, A)
        listed = await (await client.post("/api/images/get_sample_imgs", json={"hash": A})).json()
        assert record["images"] == listed == [f"{A}_{s}.webp" for s in range(len(listed))], done
        assert check_library(data_dir) == [], done
        recorded = {v for _, v in await history_views(client)}
        current = view(record)
        assert all(s in recorded or s == current for s in seen), done
        seen.append(current)

    for state in dict.fromkeys(reversed(seen)):  # newest first; each once
        if view((await get_model(client, A))[0]) == state:
            continue  # the model is in that state now (it may never have left it)
        entry_id = next(i for i, v in await history_views(client) if v == state)
        status, answer, _ = await call(
            client, "POST", f"/api/models/{A}/history/{entry_id}/restore"
        )
        assert status == 200, answer
        assert view((await get_model(client, A))[0]) == state
    assert check_library(data_dir) == []
