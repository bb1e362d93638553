"""POST /api/migration/import_a_model honours If-Match with the ETag of the library's model of
the pending model's SHA256 (the one GET /api/models/{sha256} gives, and preview_import's ETag
header): a person who compared the two and chose Override or Merge does not overwrite an edit
made elsewhere since. 412 and nothing changes when it does not match, the pending model still
pending; with no model of that SHA256 in the library any more, no tag matches (RFC 9110
13.1.1), `*` neither. Without the header, the import is as the contract says. Through the real
app, on the library of tests/test_edit_races.py: model M with four images and pending model
PENDING of M's content with an image."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, shelf_of
from tests.editing import assert_error, call, get_model, snapshot
from tests.test_conditional_upload import held_renderings, settled
from tests.test_edit_races import PENDING, library_copy

IMPORT = "/api/migration/import_a_model"
PREVIEW = "/api/migration/preview_import"


@pytest.fixture
async def library(
    aiohttp_client: Any, tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> tuple[Client, str]:
    return await library_copy(aiohttp_client, tmp_path_factory, data_dir)


async def import_with(client: Client, strategy: str | None, **headers: str) -> tuple[int, Any]:
    body = {"id": PENDING, "conf_strategy": strategy}
    status, answer, _ = await call(client, "POST", IMPORT, body, **headers)
    return status, answer


async def preview(client: Client, strategy: str) -> tuple[dict[str, Any], str | None]:
    response = await client.post(PREVIEW, json={"id": PENDING, "conf_strategy": strategy})
    body = await response.json()
    assert response.status == 200, body
    return body, response.headers.get("ETag")


async def edit_elsewhere(client: Client, sha: str) -> None:
    status, answer, _ = await call(client, "PATCH", f"/api/models/{sha}", {"name": "Edited"})
    assert status == 200, answer


async def still_pending(client: Client) -> bool:
    response = await client.get("/api/migration/pending_models")
    return PENDING in [m["id"] for m in (await response.json())["models"]]


@pytest.mark.parametrize("strategy", ["override", "merge", "delete"])
async def test_the_preview_carries_the_existing_models_etag_in_a_header(
    library: tuple[Client, str], strategy: str
) -> None:
    client, sha = library
    body, etag = await preview(client, strategy)
    assert set(body) == {"action_taken", "result", "existing", "pending"}
    assert etag == (await get_model(client, sha))[1]


async def test_a_preview_with_no_existing_model_carries_no_etag(
    library: tuple[Client, str],
) -> None:
    client, sha = library
    assert (await call(client, "DELETE", f"/api/models/{sha}"))[0] == 200
    body, etag = await preview(client, "override")
    assert body["existing"] is None
    assert etag is None


@pytest.mark.parametrize("strategy", ["override", "merge"])
async def test_a_resolution_over_a_model_edited_since_the_preview_is_412_and_changes_nothing(
    library: tuple[Client, str], data_dir: Path, strategy: str
) -> None:
    client, sha = library
    _, etag = await preview(client, strategy)
    assert etag is not None
    await edit_elsewhere(client, sha)
    _, now = await get_model(client, sha)
    before = snapshot(data_dir)
    status, answer = await import_with(client, strategy, **{"If-Match": etag})
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    assert answer["etag"] == now
    assert snapshot(data_dir) == before
    assert await still_pending(client)
    assert (await get_model(client, sha))[0]["name"] == "Edited"


@pytest.mark.parametrize(("strategy", "action"), [("override", "overridden"), ("merge", "merged")])
@pytest.mark.parametrize("form", ["{etag}", '"0000", {etag}', "*"])
async def test_a_resolution_with_a_matching_if_match_is_carried_out(
    library: tuple[Client, str], strategy: str, action: str, form: str
) -> None:
    client, sha = library
    _, etag = await preview(client, strategy)
    assert etag is not None
    status, answer = await import_with(client, strategy, **{"If-Match": form.format(etag=etag)})
    assert (status, answer) == (200, {"status": "success", "sha256": sha, "action_taken": action})
    assert not await still_pending(client)


async def test_without_if_match_an_override_is_as_before(library: tuple[Client, str]) -> None:
    client, sha = library
    await edit_elsewhere(client, sha)
    status, answer = await import_with(client, "override")
    assert (status, answer["action_taken"]) == (200, "overridden")
    assert (await get_model(client, sha))[0]["name"] != "Edited"


@pytest.mark.parametrize("strategy", ["override", "merge", "delete", None])
@pytest.mark.parametrize("form", ["{etag}", "*"])
async def test_if_match_when_the_library_has_no_such_model_any_more_is_412(
    library: tuple[Client, str], data_dir: Path, strategy: str | None, form: str
) -> None:
    """Deleted elsewhere after the comparison: a list of tags cannot match a model that is
    not there, nor can `*` (RFC 9110 13.1.1); the import, which would now add the pending
    model as a new one, is not what the person chose."""
    client, sha = library
    _, etag = await get_model(client, sha)
    assert (await call(client, "DELETE", f"/api/models/{sha}"))[0] == 200
    before = snapshot(data_dir)
    status, answer = await import_with(client, strategy, **{"If-Match": form.format(etag=etag)})
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    assert snapshot(data_dir) == before
    assert await still_pending(client)


async def test_if_match_is_decided_before_the_conflict_without_a_strategy(
    library: tuple[Client, str], data_dir: Path
) -> None:
    client, sha = library
    _, etag = await get_model(client, sha)
    status, answer = await import_with(client, None, **{"If-Match": etag})
    assert status == 409, answer
    assert answer["existing"]["sha256"] == sha
    status, answer = await import_with(client, None, **{"If-Match": '"0000"'})
    assert status == 412, answer


async def test_a_malformed_if_match_is_400_and_changes_nothing(
    library: tuple[Client, str], data_dir: Path
) -> None:
    client, _ = library
    before = snapshot(data_dir)
    status, answer = await import_with(client, "override", **{"If-Match": "abc"})
    assert status == 400, answer
    assert snapshot(data_dir) == before


async def test_an_edit_committed_while_the_import_renders_makes_it_412(
    library: tuple[Client, str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided in the import's change, under the model's lock: the pending image is rendered
    before it (holding no lock), and an edit made meanwhile must not be overwritten."""
    client, sha = library
    _, etag = await preview(client, "override")
    assert etag is not None
    with held_renderings(shelf_of(client), monkeypatch) as gate:
        sent = asyncio.create_task(import_with(client, "override", **{"If-Match": etag}))
        await gate.wait_reached()
        await edit_elsewhere(client, sha)
        before = settled(data_dir)
        gate.open()
        status, answer = await sent
    assert status == 412, answer
    assert settled(data_dir) == before
    assert await still_pending(client)
    assert (await get_model(client, sha))[0]["name"] == "Edited"


def test_the_published_import_takes_if_match_and_may_answer_412() -> None:
    operation = build_openapi()["paths"][IMPORT]["post"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["If-Match"]
    assert "412" in operation["responses"]
    assert "If-Match" in operation["summary"]
