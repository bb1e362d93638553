"""An edit may not grow a model's meta_json past MAX_EDITED_META_CHARS (each edit keeps the
model as it was in history: metadata grown by edits made the history grow with the square of
the edits). It answers 413 and changes nothing; metadata over the limit that a model already
had (a scan's, a legacy row's) may be kept or shrunk by an edit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.meta import MAX_EDITED_META_CHARS
from tests.conftest import Client, migrate
from tests.editing import A, B, assert_error, build, call, get_model, snapshot
from tests.factories import LegacyLibrary

# Two of these fit in no edit: each alone is well under the limit (and the body limit).
HALF = "x" * (MAX_EDITED_META_CHARS * 6 // 10)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


async def patch(client: Client, sha: str, meta: dict[str, Any]) -> tuple[int, Any]:
    status, answer, _ = await call(client, "PATCH", f"/api/models/{sha}", {"meta_json": meta})
    return status, answer


async def test_an_edit_that_grows_meta_json_past_the_limit_is_413_and_changes_nothing(
    library: Client, data_dir: Path
) -> None:
    status, answer = await patch(library, A, {"first": HALF})
    assert status == 200, answer
    before = snapshot(data_dir)
    status, answer = await patch(library, A, {"second": HALF})
    assert status == 413, answer
    assert_error(answer, "Request Entity Too Large")
    assert f"{MAX_EDITED_META_CHARS:,}" in answer["detail"]
    assert snapshot(data_dir) == before


async def test_a_bulk_edit_that_grows_one_model_past_the_limit_changes_no_model(
    library: Client, data_dir: Path
) -> None:
    status, answer = await patch(library, B, {"first": HALF})
    assert status == 200, answer
    before = snapshot(data_dir)
    body = {"hashes": [A, B], "meta_json": {"second": HALF}}
    status, answer, _ = await call(library, "POST", "/api/models/edit", body)
    assert status == 413, answer
    assert snapshot(data_dir) == before


async def test_metadata_already_over_the_limit_may_be_kept_or_shrunk_but_not_grown(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """A legacy row (as a scan's header could) brings meta_json over the limit."""
    tags = "t" * (MAX_EDITED_META_CHARS + 1000)
    legacy.add_model(1, hash_hex=A, name="Big", extra={"ss_tag_frequency": tags, "k": 1})
    await migrate(client, legacy)
    renamed, _, _ = await call(client, "PATCH", f"/api/models/{A}", {"name": "Still big"})
    assert renamed == 200
    assert (await patch(client, A, {"k": None}))[0] == 200  # shrinks
    assert (await patch(client, A, {"same": 1}))[0] == 413  # grows
    record, _ = await get_model(client, A)
    assert record["name"] == "Still big"
    assert record["meta_json"] == {"ss_tag_frequency": tags}
