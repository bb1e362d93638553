"""The scan's part of the crash suite (tests/test_crashpoints.py): the model tree a template
serves as its model roots, the drive that scans and follows the job to its end, and the
property a scan cut short must leave.

A scan is many changes (a hash-cache entry per file hashed, one registration per file, the
seen and missing marks, the paths, the facts read again, the job's own rows), so "exactly
as before or exactly as after" does not hold for a scan as a whole. What holds after a crash
anywhere in it, with the library as some prefix of those changes left it (`assert_between`):

- every row of every table of library data (keyed by its primary key) is as it was before
  the scan or as the uncrashed scan left it, and so is every file under images/;
- each model's record apart from its `path` (its row, tags, images with their renditions'
  bytes, the facts and example images the scan recorded for it) is wholly as before or
  wholly as after: a model is never half created or half refreshed; only which of its copies
  the facts were read from may be fewer than after (`_copies_set_aside`). A model that
  gains a copy with sidecars of its own (a model made before, or one made at once because
  too many files waited for their copies, see scan_turns.HeldCopies) can be seen
  between the two readings with the facts it had, a state a scan not yet past that copy
  also shows; the fixture's copy has none, so meta_json is compared whole here;
- every location names a model that exists.

Then a scan run again ends exactly as the uncrashed scan (rows compared without the columns
that only say when: `created_at`, `last_seen`; every rendition's bytes compared).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

from modelshelf.renditions import qualities
from tests.factories import image_size, query
from tests.model_folders import (
    image_bytes,
    kohya_lora_metadata,
    lora_manager_metadata,
    modelspec_metadata,
    write_civitai_info,
    write_lora_manager,
    write_preview,
    write_safetensors,
)
from tests.server import ServerProcess

ROOT_TYPES = ("loras", "checkpoints")
THUMBNAIL_WIDTH = 32
PREVIEW_WIDTH = 40  # write_preview's image
# One worker, so that the census counts the same changes every time: with two, a change
# finishing while another waits for the writer leaves its journal entry to be forgotten by
# that one, one change fewer. (What a scan ends with does not depend on the workers: copies
# of one content are registered in walk order, see scan_run._Turns.)
SCAN_ENVIRONMENT = {"MODELSHELF_WORKERS": "1"}

# How many leading columns of each table's rows (as library_state reads them) are its key;
# tables not listed are keyed by the whole row.
KEY_COLUMNS = {
    "models": 1,
    "tags": 1,
    "pending_import": 1,
    "pending_images": 1,
    "legacy_import_log": 1,
    "model_files": 1,
    "file_facts": 1,
}
# The tables whose rows a model's record consists of, and the column naming the model.
MODEL_PARTS = {"model_tags": 0, "images": 0, "file_facts": 0, "file_images": 0}


# --- the model tree ---------------------------------------------------------------------------


def build_model_tree(models: Path, *, doomed: bool = False) -> None:
    """Real safetensors files under models/loras and models/checkpoints: a LoRA with kohya
    metadata, a preview sidecar and a LoRA Manager record with tags; a LoRA with an embedded
    thumbnail; a checkpoint with a Civitai Helper record, and a copy of it in a sub-folder.
    `doomed`: one more LoRA, for a rescan to find gone."""
    loras, checkpoints = models / "loras", models / "checkpoints"
    cat = write_safetensors(loras / "cat.safetensors", kohya_lora_metadata(), seed=1)
    write_preview(cat)
    write_lora_manager(cat)
    thumbnail = image_bytes(".jpg", width=THUMBNAIL_WIDTH, height=24)
    write_safetensors(loras / "dog.safetensors", modelspec_metadata(thumbnail), seed=2)
    base = write_safetensors(
        checkpoints / "base.safetensors", {"ss_base_model_version": "sd_v1"}, seed=3
    )
    write_civitai_info(base)
    (checkpoints / "backup").mkdir()
    shutil.copy2(base, checkpoints / "backup" / "base.safetensors")
    if doomed:
        write_safetensors(loras / "old.safetensors", {"ss_output_name": "old"}, seed=4)


def change_model_tree(models: Path) -> None:
    """What happens to a tree between two scans: the dog LoRA is replaced by other content,
    the checkpoint's copy moves to another folder, the cat's LoRA Manager record gains a tag,
    the old LoRA is deleted."""
    loras, checkpoints = models / "loras", models / "checkpoints"
    thumbnail = image_bytes(".png", width=THUMBNAIL_WIDTH + 8, height=24)
    write_safetensors(
        loras / "dog.safetensors", modelspec_metadata(thumbnail, **{"modelspec.title": "Dog 2"})
    )
    (checkpoints / "archive").mkdir()
    os.rename(
        checkpoints / "backup" / "base.safetensors", checkpoints / "archive" / "base.safetensors"
    )
    cat = loras / "cat.safetensors"
    record = lora_manager_metadata(cat)
    write_lora_manager(cat, record | {"tags": [*record["tags"], "favourite"]})
    (loras / "old.safetensors").unlink()


def scan_environment(template: Path) -> dict[str, str]:
    """The settings of a server whose model roots are the template's tree (only read)."""
    roots = ";".join(f"{kind}={template / 'models' / kind}" for kind in ROOT_TYPES)
    return {"MODELSHELF_MODEL_ROOTS": roots, **SCAN_ENVIRONMENT}


def model_roots(template: Path) -> dict[str, list[Path]]:
    return {kind: [template / "models" / kind] for kind in ROOT_TYPES}


# --- driving a scan ---------------------------------------------------------------------------


def scan_request(server: ServerProcess) -> int | None:
    """POST /api/scan (202 at once), then follow the job's events to its end: 200 if the job
    ended done, 500 if it ended otherwise, the status if the scan was refused, None if the
    connection broke (the process died)."""
    request = urllib.request.Request(
        server.url + "/api/scan",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            job_id = json.load(response)["job"]["id"]
        with urllib.request.urlopen(f"{server.url}/api/jobs/{job_id}/events", timeout=30) as events:
            ended = _end_of(events)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, http.client.HTTPException):  # the process died under the request
        return None
    if ended is None:
        return None
    return 200 if ended["state"] == "done" else 500


def _end_of(events: Any) -> dict[str, Any] | None:
    """The job an `end` event carries, or None if the stream closed first."""
    name = ""
    for raw in events:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            name = line.partition(":")[2].strip()
        elif line.startswith("data:") and name == "end":
            job: dict[str, Any] = json.loads(line.partition(":")[2])
            return job
    return None


# --- the property -----------------------------------------------------------------------------


def _keyed(rows: list[Any], width: int | None) -> dict[Any, Any]:
    return {tuple(row[:width]) if width else tuple(row): tuple(row) for row in rows}


def _model_record(state: dict[str, Any], sha256: str) -> Any:
    """A model's record apart from its path: row, tags, images and their renditions' bytes,
    the scan's facts and example images; None if there is no such model."""
    rows = state["rows"]
    row = next((r for r in rows["models"] if r[0] == sha256), None)
    if row is None:
        return None
    parts = {
        table: sorted((r for r in rows[table] if r[column] == sha256), key=repr)
        for table, column in MODEL_PARTS.items()
    }
    files = {name: digest for name, digest in state["files"].items() if sha256 in name}
    return (row[:1] + row[2:], parts, files)


def assert_between(state: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    """The library as some prefix of the scan's changes leaves it (see the module docstring).
    `library_state` values, the models table without created_at."""
    wrong = []
    state, read = _copies_set_aside(state)
    (before, was), (after, will) = _copies_set_aside(before), _copies_set_aside(after)
    wrong += [
        f"file_facts {sha256}: copies {sorted(paths)} were read neither before nor after"
        for sha256, paths in read.items()
        if paths not in (was.get(sha256), will.get(sha256)) and not paths <= will.get(sha256, set())
    ]
    for table in state["rows"]:
        width = KEY_COLUMNS.get(table)
        now, was, will = (_keyed(s["rows"][table], width) for s in (state, before, after))
        for key in now.keys() | was.keys() | will.keys():
            if now.get(key) not in (was.get(key), will.get(key)):
                wrong.append(f"{table} {key}: {now.get(key)} is neither {was.get(key)} nor after")
    for name in state["files"].keys() | before["files"].keys() | after["files"].keys():
        if state["files"].get(name) not in (before["files"].get(name), after["files"].get(name)):
            wrong.append(f"file {name} is neither as before nor as after")
    for (sha256,) in {row[:1] for row in state["rows"]["models"]}:
        record = _model_record(state, sha256)
        if record not in (_model_record(before, sha256), _model_record(after, sha256)):
            wrong.append(f"model {sha256} is half changed: {record}")
    models = {row[0] for row in state["rows"]["models"]}
    wrong += [
        f"location {row[0]} names no model"
        for row in state["rows"]["model_files"]
        if row[1] not in models
    ]
    assert not wrong, "\n".join(wrong)[:3000]


# file_facts as `SELECT *` reads it: model_hash, source_path, sources, written, tags, copies,
# problems.
_COPIES = 5


def _copies_set_aside(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """`state` with the copies column of file_facts emptied, and the copies read, by model.
    A copy of a model that exists is registered in a change of its own, and its sidecars are
    read in a later one: a prefix of the scan may have read fewer of a model's copies than
    the whole scan (what they say is in meta_json, still compared whole). The copies of a
    new content are registered with the model they make, its facts read from all of them."""
    rows = state["rows"]["file_facts"]
    read = {row[0]: set(json.loads(row[_COPIES])) for row in rows}
    emptied = [(*row[:_COPIES], None, *row[_COPIES + 1 :]) for row in rows]
    return {**state, "rows": {**state["rows"], "file_facts": emptied}}, read


# --- what the scan promises, spelled out -----------------------------------------------------


def assert_scanned(data: Path, template: Path, *, rescan: bool) -> None:
    """Which model has which files, pictures, tags and facts after the (re)scan."""
    loras, checkpoints = template / "models" / "loras", template / "models" / "checkpoints"
    rows = query(data, "SELECT name, sha256, path, meta_json FROM models ORDER BY name")
    # A rescan keeps the dog's first content as a model of its own (nothing is deleted).
    names = ["base", "cat", "dog", *(["dog", "old"] if rescan else [])]
    assert [row[0] for row in rows] == names, rows
    by_name = {name: (sha256, path, json.loads(meta)) for name, sha256, path, meta in rows}
    cat, base = by_name["cat"][0], by_name["base"][0]
    assert _widths(data, cat) == [PREVIEW_WIDTH]
    expected_tags = {"animal", "cat", "style", *(["favourite"] if rescan else [])}
    assert _tags(data, cat) == expected_tags
    assert by_name["base"][1] == str(checkpoints / "base.safetensors")
    assert by_name["base"][2]["base_model"] == "SDXL 1.0"  # from the Civitai record
    copy = checkpoints / ("archive" if rescan else "backup") / "base.safetensors"
    assert _files(data, base) == {str(checkpoints / "base.safetensors"): 1, str(copy): 1} | (
        {str(checkpoints / "backup" / "base.safetensors"): 0} if rescan else {}
    )
    dogs = query(
        data,
        "SELECT m.sha256 FROM models m JOIN model_files f ON f.sha256 = m.sha256 WHERE f.path = ?",
        str(loras / "dog.safetensors"),
    )
    assert len(dogs) == 1
    assert _widths(data, dogs[0][0]) == [THUMBNAIL_WIDTH + (8 if rescan else 0)]
    if rescan:
        assert _files(data, by_name["old"][0]) == {str(loras / "old.safetensors"): 0}


def _widths(data: Path, sha256: str) -> list[int]:
    seqs = query(data, "SELECT seq FROM images WHERE model_hash = ? ORDER BY seq", sha256)
    return [
        image_size(data / "images" / f"{sha256}_{seq}_{qualities()[0]}.webp")[0] for (seq,) in seqs
    ]


def _tags(data: Path, sha256: str) -> set[str]:
    rows = query(
        data,
        "SELECT t.name FROM tags t JOIN model_tags mt ON mt.tag_id = t.id WHERE mt.model_hash = ?",
        sha256,
    )
    return {name for (name,) in rows}


def _files(data: Path, sha256: str) -> dict[str, int]:
    rows = query(data, "SELECT path, present FROM model_files WHERE sha256 = ?", sha256)
    found: dict[str, int] = defaultdict(int)
    for path, present in rows:
        found[path] = present
    return dict(found)
