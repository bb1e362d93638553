"""POST /api/migration/preview_import through the real app: it answers what import_a_model
would do and changes nothing; for every strategy, with and without a conflict, the preview is
exactly what the real import then does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, MakeClient, migrate
from tests.editing import assert_error, call, get_model, snapshot
from tests.factories import LegacyLibrary, make_model_file
from tests.scanning import scan, start

PREVIEW = "/api/migration/preview_import"
IMPORT = "/api/migration/import_a_model"
STRATEGIES = [None, "override", "merge", "delete"]


async def library(
    client: Client, legacy: LegacyLibrary, models_dir: Path, *, conflict: bool
) -> str:
    """Pending model 2 (tags anime+new, an image, meta). With `conflict`, model 1 with the
    same content is in the library already (tags checkpoint+anime, two images, a NULL size)."""
    for tag_id, name in [(1, "checkpoint"), (2, "anime"), (3, "new")]:
        legacy.add_tag(tag_id, name)
    sha = make_model_file(models_dir / "pending.safetensors", seed=7)
    if conflict:
        make_model_file(models_dir / "existing.safetensors", seed=7)
        legacy.add_model(
            1,
            hash_hex=sha,
            path=str(models_dir / "existing.safetensors"),
            name="Original",
            type="checkpoint",
            size_bytes=None,
            tags=[1, 2],
            images=[legacy.image("e0.png", width=40), legacy.image("e1.png", width=44)],
            extra={"description": "old", "links": ["a"], "prompts": {"positive": "cat"}},
        )
    legacy.add_model(
        2,
        path=str(models_dir / "pending.safetensors"),
        name="Renamed",
        type="",
        tags=[2, 3],
        images=[legacy.image("p.png", width=90, height=60)],
        extra={"description": "new", "links": ["b"], "prompts": {"negative": "blur"}, "x": 1},
    )
    await migrate(client, legacy)
    return sha


@pytest.mark.parametrize("conflict", [False, True], ids=["no-conflict", "conflict"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=str)
async def test_the_preview_is_what_the_import_then_does(
    client: Client,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    strategy: str | None,
    conflict: bool,
) -> None:
    sha = await library(client, legacy, models_dir, conflict=conflict)
    before = snapshot(data_dir)
    existing = (await get_model(client, sha))[0] if conflict else None
    pending = (await (await client.get("/api/migration/pending_models")).json())["models"][0]

    preview = await call(client, "POST", PREVIEW, {"id": 2, "conf_strategy": strategy})

    # (snapshot leaves out hash_cache: the digest a preview computed is kept for the import)
    assert snapshot(data_dir) == before, "a preview changed the library"
    done = await call(client, "POST", IMPORT, {"id": 2, "conf_strategy": strategy})
    if conflict and strategy is None:
        assert preview[0] == done[0] == 409
        assert_error(preview[1], "Conflict")
        assert {k: preview[1][k] for k in ("existing", "pending")} == {
            k: done[1][k] for k in ("existing", "pending")
        }
        assert snapshot(data_dir) == before
        return
    assert (preview[0], done[0]) == (200, 200), (preview, done)
    assert preview[1]["action_taken"] == done[1]["action_taken"]
    assert preview[1]["existing"] == existing
    assert {k: v for k, v in preview[1]["pending"].items() if k not in ("size_bytes",)} == {
        k: v for k, v in pending.items() if k not in ("size_bytes",)
    }
    assert preview[1]["result"] == (await get_model(client, sha))[0]


@pytest.mark.parametrize("strategy", ["override", "merge", "delete"])
async def test_the_preview_of_a_conflict_with_a_model_a_scan_found_keeps_its_files(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    models_dir: Path,
    tmp_path: Path,
    strategy: str,
) -> None:
    """An import leaves a model's locations as they are: the preview's result carries them,
    and says the model is not missing, as the model answers after the import."""
    client = await start(make_client, checkpoints=models_dir)
    sha = make_model_file(models_dir / "existing.safetensors", seed=7)
    await scan(client)
    elsewhere = tmp_path / "elsewhere" / "pending.safetensors"
    make_model_file(elsewhere, seed=7)
    legacy.add_model(2, path=str(elsewhere), images=[legacy.image("p.png")])
    await migrate(client, legacy)

    preview = await call(client, "POST", PREVIEW, {"id": 2, "conf_strategy": strategy})
    assert preview[0] == 200, preview
    assert (await call(client, "POST", IMPORT, {"id": 2, "conf_strategy": strategy}))[0] == 200
    after = (await get_model(client, sha))[0]
    assert after["files"] == [{"path": str(models_dir / "existing.safetensors"), "present": True}]
    assert preview[1]["result"] == after


@pytest.mark.parametrize(
    ("strategy", "images", "action"),
    [("override", 2, "overridden"), ("merge", 3, "merged"), ("delete", 2, "deleted")],
)
async def test_the_preview_result_includes_the_images_the_import_would_leave(
    client: Client,
    legacy: LegacyLibrary,
    models_dir: Path,
    strategy: str,
    images: int,
    action: str,
) -> None:
    sha = await library(client, legacy, models_dir, conflict=True)
    status, body, _ = await call(client, "POST", PREVIEW, {"id": 2, "conflict_strategy": strategy})
    assert status == 200
    assert body["action_taken"] == action
    assert body["result"]["images"] == [f"{sha}_{s}.webp" for s in range(images)]


async def test_a_preview_of_an_unknown_id_is_404(client: Client) -> None:
    status, body, _ = await call(client, "POST", PREVIEW, {"id": 77, "conf_strategy": None})
    assert status == 404
    assert_error(body, "Not Found")


async def test_a_preview_of_a_missing_model_file_is_422_like_the_import(
    client: Client, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    await library(client, legacy, models_dir, conflict=False)
    (models_dir / "pending.safetensors").unlink()
    before = snapshot(data_dir)
    preview = await call(client, "POST", PREVIEW, {"id": 2})
    done = await call(client, "POST", IMPORT, {"id": 2})
    assert preview[0] == done[0] == 422
    assert snapshot(data_dir) == before


@pytest.mark.parametrize("strategy", [None, "merge"])
async def test_a_preview_of_a_corrupt_pending_image_is_422_like_the_import(
    client: Client, legacy: LegacyLibrary, models_dir: Path, data_dir: Path, strategy: str | None
) -> None:
    await library(client, legacy, models_dir, conflict=strategy is not None)
    (data_dir / "images" / "pending" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    preview = await call(client, "POST", PREVIEW, {"id": 2, "conf_strategy": strategy})
    done = await call(client, "POST", IMPORT, {"id": 2, "conf_strategy": strategy})
    assert preview[0] == done[0] == 422, (preview, done)


@pytest.mark.parametrize(
    "body",
    [{}, {"id": "2"}, {"id": 2, "conf_strategy": "replace"}, {"id": 2, "extra": 1}, [2]],
)
async def test_a_malformed_preview_is_400(client: Client, body: Any) -> None:
    status, answer, _ = await call(client, "POST", PREVIEW, body)
    assert status == 400
    assert_error(answer, "Bad Request")
