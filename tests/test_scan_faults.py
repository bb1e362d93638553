"""Bad files are reported, never fatal: symlinks and loops, unfinished downloads, names that
are not UTF-8, files that vanish before or while they are hashed, unreadable files and
folders, roots that are missing or on a full or read-only disk. A cancelled scan leaves a
consistent library and running it again costs little."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain import scan_run
from modelshelf.domain.scan import scan_library
from modelshelf.domain.scan_report import READING
from modelshelf.integrity import check_library
from tests.conftest import MakeClient, shelf_of
from tests.factories import make_model_file
from tests.model_folders import (
    civitai_version,
    image_bytes,
    write_civitai_info,
    write_safetensors,
)
from tests.scanning import Recorder, model, models, problems, scan, sha256_of, start
from tests.server import drop_permission_bypass
from tests.test_faults import mounted
from tests.test_folders_walk import REPO


async def test_symlinks_are_followed_and_a_loop_is_reported(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras, shared = tmp_path / "loras", tmp_path / "shared"
    sha256 = make_model_file(shared / "cat.ckpt", size=5000, seed=1)
    (loras / "sub").mkdir(parents=True)
    (loras / "shared").symlink_to(shared, target_is_directory=True)
    (loras / "sub" / "loop").symlink_to(loras, target_is_directory=True)
    (loras / "dog.ckpt").symlink_to(shared / "cat.ckpt")
    client = await start(make_client, loras=loras)

    result = await scan(client)

    record = await model(client, sha256)
    assert [f["path"] for f in record["files"]] == [
        str(loras / "dog.ckpt"),
        str(loras / "shared" / "cat.ckpt"),
    ]
    assert problems(result) == {str(loras / "sub" / "loop"): f"symlink loop: leads back to {loras}"}
    duplicates = await (await client.get("/api/duplicates")).json()
    assert duplicates["wasted_bytes"] == 0  # two paths, one file


async def test_an_unfinished_download_waits_until_it_is_renamed(
    make_client: MakeClient, tmp_path: Path
) -> None:
    part = tmp_path / "loras" / "big.safetensors.part"
    make_model_file(part, size=4000, seed=2)
    (tmp_path / "loras" / "other.safetensors.crdownload").write_bytes(b"x")
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)
    assert result["counts"]["files_found"] == 0
    assert await models(client) == []

    part.rename(part.with_suffix(""))
    await scan(client)
    assert [m["name"] for m in await models(client)] == ["big"]


def write_bad_name(folder: Path) -> None:
    with open(os.fsencode(folder) + b"/bad\xff.safetensors", "wb") as handle:
        handle.write(b"weights")


async def test_a_name_that_is_not_utf8_is_reported_and_the_rest_scanned(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    good = write_safetensors(loras / "good.safetensors")
    write_bad_name(loras)
    client = await start(make_client, loras=loras)

    result = await scan(client)

    assert problems(result) == {f"{loras}/bad\\xff.safetensors": "name is not valid UTF-8"}
    assert [m["path"] for m in await models(client)] == [str(good)]
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # the report is valid UTF-8


class DeleteWhen(Recorder):
    """Deletes `path` when the scan says `event` for the first time."""

    def __init__(self, path: Path, event: str) -> None:
        super().__init__()
        self.path, self.event = path, event

    def planned(self, files: int, hash_bytes: int) -> None:
        super().planned(files, hash_bytes)
        if self.event == "planned":
            self.path.unlink(missing_ok=True)

    def hashed(self, count: int) -> None:
        super().hashed(count)
        if self.event == "hashed":
            self.path.unlink(missing_ok=True)


@pytest.mark.parametrize("when", ["planned", "hashed"], ids=["before hashing", "while hashing"])
async def test_a_file_that_vanishes_before_or_while_it_is_hashed_is_reported(
    make_client: MakeClient, tmp_path: Path, when: str
) -> None:
    doomed = tmp_path / "loras" / "doomed.safetensors"
    make_model_file(doomed, size=1000, seed=1)
    client = await start(make_client, loras=tmp_path / "loras")
    progress = DeleteWhen(doomed, when)

    result = await scan(client, progress=progress)

    assert list(problems(result)) == [str(doomed)]
    assert "cannot be read" in problems(result)[str(doomed)]
    assert result["counts"]["failed"] == 1
    assert await models(client) == []
    assert progress.bytes_hashed == 1000  # the totals meet even so
    assert progress.done == [str(doomed)]


@pytest.mark.parametrize("kind", ["does not exist", "is a file"])
async def test_a_root_that_is_not_a_folder_is_a_warning_and_the_rest_is_scanned(
    make_client: MakeClient, tmp_path: Path, kind: str
) -> None:
    gone = tmp_path / "unmounted"
    if kind == "is a file":
        gone.write_text("")
    good = write_safetensors(tmp_path / "loras" / "a.safetensors")
    client = await start(make_client, loras=[gone, tmp_path / "loras"])

    result = await scan(client)

    assert any(str(gone) in w for w in result["warnings"])
    assert str(gone) not in problems(result)  # warned about once, not listed twice
    assert [m["path"] for m in await models(client)] == [str(good)]


async def test_files_of_a_root_that_went_away_are_marked_missing(
    make_client: MakeClient, tmp_path: Path
) -> None:
    drive = tmp_path / "drive"
    sha256 = make_model_file(drive / "models" / "a.ckpt", size=100, seed=1)
    client = await start(make_client, checkpoints=drive / "models")
    await scan(client)

    drive.rename(tmp_path / "elsewhere")  # unmounted
    result = await scan(client)

    assert result["counts"]["locations_missing"] == 1
    assert (await model(client, sha256))["missing"] is True


@pytest.mark.parametrize("device", ["the same", "another"])
async def test_a_root_mounted_again_is_present_again_without_reading_a_file(
    make_client: MakeClient, tmp_path: Path, device: str
) -> None:
    """A models disk unplugged and plugged in again: its files were marked missing, and come
    back as they were, hashed from what is known (a disk mounted again may get another device
    number, which the hash cache does not hold against a file of the same path, size, mtime
    and inode)."""
    drive = tmp_path / "drive"
    sha256 = make_model_file(drive / "models" / "a.ckpt", size=5000, seed=1)
    (drive / "models" / "a.civitai.info").write_text('{"baseModel": "SDXL 1.0"}')
    client = await start(make_client, checkpoints=drive / "models")
    await scan(client)
    before = await model(client, sha256)
    drive.rename(tmp_path / "elsewhere")  # unmounted
    await scan(client)
    (tmp_path / "elsewhere").rename(drive)  # mounted again
    if device == "another":
        with contextlib.closing(sqlite3.connect(shelf_of(client).storage.path)) as db, db:
            db.execute("UPDATE model_files SET device = device + 1")

    result = await scan(client)

    assert result["counts"]["hashed"] == 0
    after = await model(client, sha256)
    assert after["missing"] is False
    assert after["files"] == before["files"]
    assert after["meta_json"] == before["meta_json"]
    assert [m["sha256"] for m in await models(client)] == [sha256]
    assert check_library(shelf_of(client).settings.data_dir) == []


def remount_read_only(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)


@pytest.mark.parametrize("disk", ["read-only", "full"])
async def test_a_root_on_a_read_only_or_full_disk_is_scanned(
    make_client: MakeClient, tmp_path: Path, disk: str
) -> None:
    root = tmp_path / "disk"
    root.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)):
        path = write_safetensors(root / "loras" / "cat.safetensors", {"k": "v"})
        (root / "loras" / "cat.civitai.info").write_text('{"baseModel": "SDXL 1.0"}')
        if disk == "full":
            with contextlib.suppress(OSError), (root / "ballast").open("wb") as handle:
                while True:
                    handle.write(b"\0" * 65536)
        else:
            remount_read_only(root)
        client = await start(make_client, loras=root / "loras")

        result = await scan(client)

        assert result["problems"] == []
        record = await model(client, sha256_of(path))
        assert record["meta_json"]["base_model"] == "SDXL 1.0"
        await client.close()


# --- permissions: the scan runs in a child process that cannot bypass them (see walk tests) ---

CHILD = """
import asyncio, json, sys
from pathlib import Path
from aiohttp import web
from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.domain.scan import scan_library
from modelshelf.domain.scan_report import NoProgress
from modelshelf.web.keys import SHELF

async def main():
    settings = Settings(
        data_dir=Path(sys.argv[1]),
        model_roots={"loras": [Path(sys.argv[2])]},
        scan_settle_seconds=0,
    )
    runner = web.AppRunner(create_app(settings.resolve_paths()))
    await runner.setup()
    try:
        result = await scan_library(runner.app[SHELF], None, NoProgress())
    finally:
        await runner.cleanup()
    print(json.dumps(result.as_json()))

asyncio.run(main())
"""


def scan_without_privilege(data_dir: Path, root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), str(root)],
        preexec_fn=drop_permission_bypass,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def test_unreadable_files_and_folders_are_reported_and_never_marked_missing(
    make_client: MakeClient, tmp_path: Path
) -> None:
    root = tmp_path / "loras"
    readable = write_safetensors(root / "ok.safetensors", seed=1)
    secret = make_model_file(root / "locked" / "secret.safetensors", size=100, seed=2)
    unreadable = root / "unreadable.safetensors"
    make_model_file(unreadable, size=100, seed=3)
    client = await start(make_client, loras=root)
    await scan(client)
    await client.close()  # one process at a time may use the data directory

    (root / "locked").chmod(0o000)
    make_model_file(root / "new.safetensors", size=100, seed=4)
    (root / "new.safetensors").chmod(0o000)
    try:
        result = scan_without_privilege(shelf_of(client).settings.data_dir, root)
    finally:
        (root / "locked").chmod(0o755)
        (root / "new.safetensors").chmod(0o644)

    found = {p["path"]: p["reason"] for p in result["problems"]}  # type: ignore[attr-defined]
    # The header of the file of random bytes, read by the first scan, is listed again.
    assert found.pop(str(unreadable)).startswith("safetensors header: header of ")
    assert found == {
        f"{root}/locked": "cannot list folder: permission denied",
        f"{root}/new.safetensors": f"model file {root}/new.safetensors cannot be read: "
        "Permission denied",
    }
    assert result["counts"]["locations_missing"] == 0  # type: ignore[index]
    client = await start(make_client, loras=root)
    assert (await model(client, secret))["missing"] is False
    assert (await model(client, sha256_of(readable)))["missing"] is False


async def test_an_example_image_that_could_not_be_read_is_added_once_it_can_be(
    make_client: MakeClient, tmp_path: Path
) -> None:
    # A preview saved by another user's downloader with mode 600, then fixed with chmod: its
    # size and mtime stay as they were, as they do for a sidecar, which is read again.
    root = tmp_path / "loras"
    lora = write_safetensors(root / "cat.safetensors", seed=1)
    preview = root / "cat.preview.png"
    preview.write_bytes(image_bytes(".png"))
    client = await start(make_client, loras=root)
    data_dir = shelf_of(client).settings.data_dir
    await client.close()  # one process at a time may use the data directory

    preview.chmod(0o000)
    try:
        first = scan_without_privilege(data_dir, root)
    finally:
        preview.chmod(0o644)
    assert problems(first) == {
        str(preview): "example image not added: cannot read: Permission denied"
    }

    client = await start(make_client, loras=root)
    result = await scan(client)

    assert result["problems"] == []
    assert result["counts"]["images_added"] == 1
    assert len((await model(client, sha256_of(lora)))["images"]) == 1


# --- cancelling ---------------------------------------------------------------------------------


class CancelAfter(Recorder):
    def __init__(self, files: int) -> None:
        super().__init__()
        self.files = files
        self.task: asyncio.Task[object] | None = None

    def file_done(self, path: str) -> None:
        super().file_done(path)
        if len(self.done) == self.files and self.task is not None:
            self.task.cancel()


async def test_a_cancelled_scan_leaves_a_consistent_library_and_a_rerun_costs_little(
    make_client: MakeClient, tmp_path: Path, data_dir: Path
) -> None:
    loras = tmp_path / "loras"
    for index in range(8):
        path = write_safetensors(loras / f"m{index}.safetensors", {"i": str(index)}, seed=index)
        path.with_name(f"m{index}.preview.png").write_bytes(image_bytes(".png"))
    client = await start(make_client, loras=loras)
    shelf = shelf_of(client)
    progress = CancelAfter(3)
    progress.task = asyncio.ensure_future(scan_library(shelf, None, progress))

    with pytest.raises(asyncio.CancelledError):
        await progress.task

    first = await models(client)
    assert 3 <= len(first) < 8
    for record in first:  # every model registered is whole: facts, image
        assert record["meta_json"]["file_metadata"]["i"] == record["name"][1:]
        assert len(record["images"]) == 1
    await client.close()
    assert check_library(data_dir) == []

    client = await start(make_client, loras=loras)
    result = await scan(client)

    assert result["counts"]["unchanged"] == len(first)
    assert result["counts"]["hashed"] + result["counts"]["recognised"] == 8 - len(first)
    assert len(await models(client)) == 8


class CancelAtPhase(Recorder):
    def __init__(self, phase: str) -> None:
        super().__init__()
        self.at = phase
        self.task: asyncio.Task[object] | None = None

    def phase(self, name: str) -> None:
        super().phase(name)
        if name == self.at and self.task is not None:
            self.task.cancel()


async def test_a_scan_cancelled_before_it_read_the_files_again_is_finished_by_the_rerun(
    make_client: MakeClient, tmp_path: Path
) -> None:
    # The model's facts came from the copy that is deleted; the scan that marks it missing is
    # cancelled before it reads the facts again: the rerun must end as an uncut scan does.
    gone = write_safetensors(tmp_path / "a1111" / "cat.safetensors", seed=3)
    write_civitai_info(gone, civitai_version(base_model="Pony"))
    kept = tmp_path / "comfyui" / "cat.safetensors"
    kept.parent.mkdir()
    shutil.copyfile(gone, kept)
    client = await start(make_client, loras=[gone.parent, kept.parent])
    await scan(client)
    sha256 = sha256_of(kept)
    assert (await model(client, sha256))["meta_json"]["base_model"] == "Pony"
    gone.unlink()
    gone.with_name("cat.civitai.info").unlink()
    progress = CancelAtPhase(READING)
    progress.task = asyncio.ensure_future(scan_library(shelf_of(client), None, progress))
    with pytest.raises(asyncio.CancelledError):
        await progress.task

    await scan(client)

    record = await model(client, sha256)
    assert record["path"] == str(kept)
    assert "civitai" not in record["meta_json"]
    assert "base_model" not in record["meta_json"]


async def test_a_scan_stopped_once_files_were_marked_missing_is_finished_by_the_rerun(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped (cancelled, or the process killed) just after the change that marked the
    # model's `path` missing, before the path moved to the copy that is there.
    gone = write_safetensors(tmp_path / "a1111" / "cat.safetensors", seed=3)
    kept = tmp_path / "comfyui" / "cat.safetensors"
    kept.parent.mkdir()
    shutil.copyfile(gone, kept)
    client = await start(make_client, loras=[gone.parent, kept.parent])
    await scan(client)
    sha256 = sha256_of(kept)
    assert (await model(client, sha256))["path"] == str(gone)
    gone.unlink()
    mark_gone = scan_run.mark_gone

    async def then_stopped(*args: Any) -> list[str]:
        await mark_gone(*args)
        raise asyncio.CancelledError

    with monkeypatch.context() as patched:
        patched.setattr(scan_run, "mark_gone", then_stopped)
        with pytest.raises(asyncio.CancelledError):
            await scan(client)

    await scan(client)

    assert (await model(client, sha256))["path"] == str(kept)


@pytest.mark.parametrize("hashed_before", [[], ["copy"], ["copy", "first"]])
async def test_the_copy_walked_first_makes_the_model_whichever_copy_was_hashed_before(
    make_client: MakeClient, tmp_path: Path, hashed_before: list[str]
) -> None:
    """The model of a content found at two paths takes its path, name and facts from the
    path walked first, whatever the hash cache knows (a scan cut short after hashing the
    later copy, a watcher, a preview): a scan run again ends as an uncut one."""
    checkpoints = tmp_path / "checkpoints"
    paths = {
        "first": write_safetensors(checkpoints / "a" / "base.safetensors", seed=3),
        "copy": checkpoints / "b" / "copy of base.safetensors",
    }
    write_civitai_info(paths["first"])
    paths["copy"].parent.mkdir()
    shutil.copy2(paths["first"], paths["copy"])
    client = await start(make_client, checkpoints=checkpoints)
    for name in hashed_before:
        await shelf_of(client).hasher.digest(paths[name])

    await scan(client)

    record = await model(client, sha256_of(paths["first"]))
    assert (record["path"], record["name"]) == (str(paths["first"]), "base")
    assert record["meta_json"]["base_model"] == "SDXL 1.0"  # from the first copy's sidecar
    assert [f["path"] for f in record["files"]] == [str(paths["first"]), str(paths["copy"])]
