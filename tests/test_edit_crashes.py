"""Every edit is one atomic change, even when the process dies: the server is made to exit at
each step of a reorder and of a model delete (crash points), started again, and the library
is found either as it was or as the edit leaves it, with `modelshelf check` clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.crashpoints import CRASH_EXIT_CODE, ENVIRONMENT_VARIABLE
from modelshelf.integrity import check_library
from tests.factories import LegacyLibrary, fake_sha, image_size
from tests.server import ServerProcess

pytestmark = pytest.mark.slow

SHA = fake_sha(301)
ORDER = [3, 0, 2, 1]


def build(data_dir: Path, legacy: LegacyLibrary) -> None:
    """Model SHA with 4 images (image i is 40 + 4i px wide) and one tag, through stage 1."""
    legacy.add_tag(1, "lora")
    images = [legacy.image(f"m{i}.png", width=40 + 4 * i, height=30) for i in range(4)]
    legacy.add_model(1, hash_hex=SHA, tags=[1], images=images)
    legacy.migrate_with_cli(data_dir, data_dir / "no-config")


def widths(data_dir: Path) -> list[int]:
    found = sorted((data_dir / "images").glob(f"{SHA}_*_high.webp"))
    return [image_size(data_dir / "images" / f"{SHA}_{s}_high.webp")[0] for s in range(len(found))]


async def request(server: ServerProcess, method: str, path: str, body: Any = None) -> int | None:
    """The status, or None if the server died before answering."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, server.url + path, json=body) as response,
        ):
            await response.read()
            return response.status
    except aiohttp.ClientError:
        return None


REORDER_POINTS = [
    "change.before_commit",
    "change.after_commit",
    "fileop.before",
    "renumber.moved_out",
    "renumber.moved_in",
    "renumber.moved_in#6",
    "change.carried_out",
]
DELETE_POINTS = [
    "change.before_commit",
    "change.after_commit",
    "fileop.before",
    "fileop.after#5",
    "change.carried_out",
]
CASES = [("reorder", p) for p in REORDER_POINTS] + [("delete", p) for p in DELETE_POINTS]


@pytest.mark.parametrize(("edit", "point"), CASES, ids=lambda v: str(v))
async def test_an_edit_cut_by_a_crash_is_all_or_nothing(
    data_dir: Path, legacy: LegacyLibrary, tmp_path: Path, edit: str, point: str
) -> None:
    build(data_dir, legacy)
    before = widths(data_dir)
    server = ServerProcess(data_dir, tmp_path / "server.log", **{ENVIRONMENT_VARIABLE: point})
    server.start()
    try:
        if edit == "reorder":
            order = [f"{SHA}_{s}.webp" for s in ORDER]
            status = await request(
                server, "POST", "/api/images/reorder", {"hash": SHA, "order": order}
            )
        else:
            status = await request(server, "DELETE", f"/api/models/{SHA}")
        assert status is None, "the crash point was never reached"
        assert server.wait(30) == CRASH_EXIT_CODE
    finally:
        server.kill()

    with ServerProcess(data_dir, tmp_path / "server.log") as again:  # start-up recovery runs
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{again.url}/api/models/{SHA}") as response,
        ):
            found = response.status
            record = await response.json()
    assert check_library(data_dir) == [], again.log()
    after = widths(data_dir)
    if edit == "reorder":
        assert after in (before, [before[s] for s in ORDER]), point
        assert found == 200 and len(record["images"]) == 4
    else:
        assert (found, after) in ((200, before), (404, [])), point
