"""A scan as a job (contract part 2, "Model folders"): `POST /api/scan` answers 202 with the job
and where to follow it, one scan at a time, bad requests make no job, a cancelled scan leaves
a consistent library; `modelshelf scan` does the same from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelshelf import crashpoints
from modelshelf.domain import long_work
from modelshelf.domain.scan_report import CHECKING, HASHING, READING, WALKING
from modelshelf.integrity import check_library
from modelshelf.storage.database import BULK_READ_CONNECTIONS
from tests.conftest import Client, MakeClient, assert_error_body, paused_at, shelf_of
from tests.events import read_events
from tests.factories import make_model_file, service_environ
from tests.model_folders import write_safetensors
from tests.scanning import models, start
from tests.test_jobs import cpu_held, follow, job_of

SCAN = "/api/scan"


def model_tree(root: Path, loras: int = 3, checkpoints: int = 2) -> dict[str, int]:
    """LoRAs and checkpoints of distinct content under `root`; returns their sizes by path."""
    sizes = {}
    for i in range(loras):
        path = write_safetensors(root / "loras" / f"lora {i}.safetensors", {"i": str(i)}, seed=i)
        sizes[str(path)] = path.stat().st_size
    for i in range(checkpoints):
        path = root / "checkpoints" / f"model {i}.ckpt"
        make_model_file(path, size=200_000 + i, seed=100 + i)
        sizes[str(path)] = path.stat().st_size
    return sizes


async def scanning(client: Client, body: Any = None) -> dict[str, Any]:
    response = await client.post(SCAN, json=body) if body is not None else await client.post(SCAN)
    answer: dict[str, Any] = await response.json()
    assert response.status == 202, answer
    assert response.headers["Location"] == f"/api/jobs/{answer['job']['id']}"
    assert "Preference-Applied" not in response.headers
    assert answer["job"]["kind"] == "scan"
    assert answer["job"]["state"] in ("queued", "running")
    return answer["job"]  # type: ignore[no-any-return]


async def test_post_scan_answers_202_and_the_job_ends_with_the_scan_result(
    make_client: MakeClient, tmp_path: Path
) -> None:
    sizes = model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )

    job = await scanning(client)
    events = await follow(client, job["id"])

    end = events[-1]
    assert end.name == "end"
    assert (end.data["state"], end.data["error"]) == ("done", None)
    assert end.data["result"]["counts"]["models_created"] == 5
    assert end.data["result"]["problems"] == []
    assert end.data["progress"]["done"] == end.data["progress"]["total"] == 5
    assert end.data["progress"]["bytes_done"] == end.data["progress"]["bytes_total"]
    assert end.data["progress"]["bytes_total"] == sum(sizes.values())
    phases = [e.data["progress"].get("phase") for e in events if e.name == "progress"]
    assert set(phases) <= {None, WALKING, HASHING, CHECKING, READING}
    assert end.data["progress"]["phase"] == READING  # the last phase it reached
    assert {m["path"] for m in await models(client)} == set(sizes)
    assert await job_of(client, job["id"]) == end.data


async def test_a_rescan_of_unchanged_files_counts_files_not_bytes(
    make_client: MakeClient, tmp_path: Path
) -> None:
    model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )
    await follow(client, (await scanning(client))["id"])

    end = (await follow(client, (await scanning(client))["id"]))[-1].data

    assert end["result"]["counts"]["unchanged"] == 5
    assert end["result"]["counts"]["bytes_hashed"] == 0
    assert (end["progress"]["done"], end["progress"]["total"]) == (5, 5)
    assert "bytes_total" not in end["progress"]


async def test_a_scan_of_some_types_reads_only_their_roots(
    make_client: MakeClient, tmp_path: Path
) -> None:
    sizes = model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )

    end = (await follow(client, (await scanning(client, {"types": ["loras"]}))["id"]))[-1].data

    assert end["result"]["counts"]["files_found"] == 3
    assert {m["path"] for m in await models(client)} == {p for p in sizes if "/loras/" in p}


async def test_a_second_scan_while_one_runs_is_409_with_the_running_one(
    make_client: MakeClient, tmp_path: Path
) -> None:
    model_tree(tmp_path)
    client = await start(make_client, loras=tmp_path / "loras")
    with cpu_held(shelf_of(client)):
        first = await scanning(client)
        response = await client.post(SCAN, json={"types": ["loras"]})
        body = await response.json()
        assert response.status == 409
        assert_error_body(body, 409, first["id"])
        assert body["job"]["id"] == first["id"]
        assert body["job"]["state"] in ("queued", "running")
    assert (await follow(client, first["id"]))[-1].data["state"] == "done"
    # Once it ended, another may start.
    assert (await follow(client, (await scanning(client))["id"]))[-1].data["state"] == "done"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"types": "loras"}', "types"),
        ('{"types": []}', "types: List should have at least 1 item"),
        ('{"types": [""]}', "types.0"),
        ('{"types": [1]}', "types.0"),
        ('{"type": ["loras"]}', "type"),
        ('{"types": ["loras"]', "malformed JSON"),
        ("[]", "body"),
        ("\n", "malformed JSON"),  # white space is not JSON; only no bytes at all is no body
    ],
)
async def test_a_bad_scan_request_is_400_and_makes_no_job(
    make_client: MakeClient, tmp_path: Path, body: str, fragment: str
) -> None:
    model_tree(tmp_path)
    client = await start(make_client, loras=tmp_path / "loras")

    response = await client.post(SCAN, data=body, headers={"Content-Type": "application/json"})

    assert_error_body(await response.json(), 400, fragment)
    assert response.status == 400
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []


async def test_a_type_no_root_has_is_404_and_makes_no_job(
    make_client: MakeClient, tmp_path: Path
) -> None:
    model_tree(tmp_path)
    client = await start(make_client, loras=tmp_path / "loras")

    response = await client.post(SCAN, json={"types": ["loras", "nope"]})

    fragment = "no model root has type 'nope'; the types with roots are: loras"
    assert_error_body(await response.json(), 404, fragment)
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []


async def test_roots_that_cannot_be_read_are_422_and_make_no_job(
    make_client: MakeClient, tmp_path: Path
) -> None:
    yaml = tmp_path / "extra_model_paths.yaml"
    yaml.write_text("comfyui: [unclosed\n")
    client = await make_client(comfyui_model_paths=yaml)

    response = await client.post(SCAN)

    assert_error_body(await response.json(), 422, "model roots")
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []


async def test_a_cancelled_scan_leaves_a_consistent_library_and_a_rescan_finishes_it(
    make_client: MakeClient, tmp_path: Path, data_dir: Path
) -> None:
    sizes = model_tree(tmp_path, loras=6, checkpoints=0)
    client = await start(make_client, loras=tmp_path / "loras")
    shelf = shelf_of(client)
    with cpu_held(shelf):  # the scan cannot hash until the block ends
        job = await scanning(client)
        answer = await client.delete(f"/api/jobs/{job['id']}")
        assert answer.status == 202
    end = (await follow(client, job["id"]))[-1].data
    assert (end["state"], end["error"], end["result"]) == (
        "cancelled",
        "cancelled on request",
        None,
    )
    assert check_library(data_dir) == []

    again = (await follow(client, (await scanning(client))["id"]))[-1].data

    assert again["state"] == "done"
    assert {m["path"] for m in await models(client)} == set(sizes)
    assert check_library(data_dir) == []


@contextlib.asynccontextmanager
async def walking(client: Client) -> AsyncIterator[tuple[dict[str, Any], dict[str, Any]]]:
    """A scan started and held after the first batch of its walk until the block ends: the
    job, and its progress once it has moved."""
    storage = shelf_of(client).storage
    async with contextlib.AsyncExitStack() as held:
        # The scan's first read after a batch of the walk waits until the block ends.
        for _ in range(BULK_READ_CONNECTIONS):
            await held.enter_async_context(storage.read(bulk=True))
        job = await scanning(client)
        async with client.get(f"/api/jobs/{job['id']}/events") as response, asyncio.timeout(10):
            async for event in read_events(response):
                if event.data["progress"]["done"]:
                    break
        yield job, event.data["progress"]


async def test_a_first_scan_s_walk_counts_the_files_it_finds(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Until the walk ends no total is known and, on a first scan, no file is done: `done`
    counts the files found so far (a walk of a big collection takes minutes)."""
    sizes = model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )
    async with walking(client) as (job, progress):
        assert (progress["phase"], progress["total"], progress["done"]) == (
            WALKING,
            None,
            len(sizes),
        )

    end = (await follow(client, job["id"]))[-1].data
    assert (end["state"], end["progress"]["done"], end["progress"]["total"]) == ("done", 5, 5)


async def test_a_scan_cancelled_in_its_walk_tells_the_files_it_did_not_those_it_found(
    make_client: MakeClient, tmp_path: Path
) -> None:
    model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )
    async with walking(client) as (job, _):
        assert (await client.delete(f"/api/jobs/{job['id']}")).status == 202
        end = (await follow(client, job["id"]))[-1].data

    assert (end["state"], end["error"]) == ("cancelled", "cancelled on request")
    assert (end["progress"]["done"], end["progress"]["total"]) == (0, None)


async def test_a_scan_that_fails_in_its_walk_tells_the_files_it_kept_not_those_it_found(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Files a rescan finds back are done once the change marking them present commits: a
    failure before it keeps none, and the failed job says so, as a cancelled one does."""
    sizes = model_tree(tmp_path, loras=3, checkpoints=0)
    client = await start(make_client, loras=tmp_path / "loras")
    assert (await follow(client, (await scanning(client))["id"]))[-1].data["state"] == "done"
    (tmp_path / "loras").rename(tmp_path / "away")  # unmounted: its files are marked missing
    assert (await follow(client, (await scanning(client))["id"]))[-1].data["state"] == "done"
    (tmp_path / "away").rename(tmp_path / "loras")

    with contextlib.ExitStack() as failing:
        async with walking(client) as (job, _):

            def fails() -> None:  # the walk's change fails, not the job's own bookkeeping
                task = asyncio.current_task()
                if task is not None and task.get_name() == f"job {job['id']}":
                    raise RuntimeError("an unexpected failure (test)")

            failing.enter_context(crashpoints.hooked("change.before_commit", fails))
        end = (await follow(client, job["id"]))[-1].data

    assert (end["state"], end["error"]) == ("failed", "internal error; see the server log")
    assert (end["progress"]["done"], end["progress"]["total"]) == (0, None)
    assert (await job_of(client, job["id"]))["progress"] == end["progress"]
    assert all(m["missing"] for m in await models(client)), "no file was marked present"
    assert len(await models(client)) == len(sizes)


async def test_a_cancelled_scan_shows_the_bytes_it_read_not_all_of_them(
    make_client: MakeClient, tmp_path: Path
) -> None:
    sizes = model_tree(tmp_path, loras=1, checkpoints=0)
    client = await start(make_client, loras=tmp_path / "loras")
    with paused_at("hash.reading") as reading:  # the file is open, no byte read yet
        job = await scanning(client)
        await reading.reached.wait()
        assert (await client.delete(f"/api/jobs/{job['id']}")).status == 202
        end = (await follow(client, job["id"]))[-1].data

    assert end["state"] == "cancelled"
    assert end["progress"]["bytes_total"] == sum(sizes.values())
    assert end["progress"]["bytes_done"] == 0
    assert (await job_of(client, job["id"]))["progress"] == end["progress"]


async def test_a_scan_shows_a_bar_of_bytes_with_files_rate_and_eta(
    make_client: MakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_tree(tmp_path)
    client = await start(
        make_client, loras=tmp_path / "loras", checkpoints=tmp_path / "checkpoints"
    )

    result = await long_work.run_scan(shelf_of(client), None, bar=True)

    assert result["counts"]["models_created"] == 5
    bar = capsys.readouterr().err
    assert "scan (hashing)" in bar
    assert "5/5 files (100%)" in bar
    assert "B/s" in bar
    assert "<00:00" in bar  # tqdm's ETA field


# --- the command line -----------------------------------------------------------------------


def run_scan_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelshelf", "scan", "--data-dir", str(tmp_path / "data"), *args],
        cwd=tmp_path,
        env=service_environ() | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_modelshelf_scan_prints_the_job_result_as_json_and_keeps_the_job(tmp_path: Path) -> None:
    sizes = model_tree(tmp_path)
    roots = f"loras={tmp_path / 'loras'};checkpoints={tmp_path / 'checkpoints'}"

    done = run_scan_cli(tmp_path, "--no-progress", MODELSHELF_MODEL_ROOTS=roots)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["counts"]["models_created"] == 5
    assert re.search(r"scan \(job [0-9a-f]{32}\): finished 5/5 files \(100%\)", done.stderr)
    with sqlite3.connect(tmp_path / "data" / "modelshelf.db") as conn:
        assert {r[0] for r in conn.execute("SELECT path FROM model_files")} == set(sizes)
        assert conn.execute("SELECT kind, state FROM jobs").fetchall() == [("scan", "done")]

    again = run_scan_cli(tmp_path, "--no-progress", "--type", "loras", MODELSHELF_MODEL_ROOTS=roots)

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["unchanged"] == 3


def test_modelshelf_scan_starts_no_folder_watcher_even_with_watch_on(tmp_path: Path) -> None:
    model_tree(tmp_path)
    roots = f"loras={tmp_path / 'loras'}"

    done = run_scan_cli(
        tmp_path, "--no-progress", MODELSHELF_MODEL_ROOTS=roots, MODELSHELF_WATCH="true"
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["models_created"] == 3
    assert "watching" not in done.stderr


def test_modelshelf_scan_of_an_unknown_type_fails_with_a_message(tmp_path: Path) -> None:
    model_tree(tmp_path)

    done = run_scan_cli(
        tmp_path, "--type", "vae", MODELSHELF_MODEL_ROOTS=f"loras={tmp_path / 'loras'}"
    )

    assert done.returncode == 1
    assert "no model root has type 'vae'; the types with roots are: loras" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "roots",
    ["", "loras={missing}"],
    ids=["no-roots", "root-missing"],
)
def test_modelshelf_scan_that_finds_nothing_to_scan_because_of_a_problem_exits_1(
    tmp_path: Path, roots: str
) -> None:
    done = run_scan_cli(
        tmp_path, "--no-progress", MODELSHELF_MODEL_ROOTS=roots.format(missing=tmp_path / "nope")
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["counts"]["files_found"] == 0
    assert "modelshelf: nothing was scanned: " in done.stderr


def test_modelshelf_scan_of_an_empty_root_is_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "loras").mkdir()
    done = run_scan_cli(
        tmp_path, "--no-progress", MODELSHELF_MODEL_ROOTS=f"loras={tmp_path / 'loras'}"
    )
    assert done.returncode == 0, done.stderr


def test_modelshelf_scan_of_one_type_is_not_failed_by_another_types_root(tmp_path: Path) -> None:
    (tmp_path / "loras").mkdir()
    roots = f"loras={tmp_path / 'loras'};checkpoints={tmp_path / 'gone'}"
    done = run_scan_cli(tmp_path, "--no-progress", "--type", "loras", MODELSHELF_MODEL_ROOTS=roots)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warnings"] == []


def test_modelshelf_scan_into_a_reader_that_went_away_says_so_without_a_traceback(
    tmp_path: Path,
) -> None:
    """`modelshelf scan | head -1`: the reader is gone when the result is printed."""
    model_tree(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "modelshelf", "scan", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=service_environ() | {"MODELSHELF_MODEL_ROOTS": f"loras={tmp_path / 'loras'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the scan has found anything to print
        err = process.stderr.read()
        process.wait(timeout=120)

    assert process.returncode == 1, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert "modelshelf: the output was closed before all of it was written" in err
    with sqlite3.connect(tmp_path / "data" / "modelshelf.db") as conn:  # the scan itself ran
        assert conn.execute("SELECT state FROM jobs").fetchall() == [("done",)]


def test_the_command_line_runs_with_no_stdout_at_all(tmp_path: Path) -> None:
    """Started with stdout closed (`>&-`, some service managers): Python's sys.stdout is None."""
    command = [sys.executable, "-m", "modelshelf", "check", "--data-dir", str(tmp_path / "none")]
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command],
        cwd=tmp_path,
        env=service_environ(),
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr  # no library there, said on stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["scan", "migrate-legacy"])
def test_a_data_dir_that_cannot_be_opened_is_one_line_and_exit_1(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "data").write_text("a file where the data directory belongs")
    args = ["--no-progress", "--data-dir", str(tmp_path / "data")]
    if command == "migrate-legacy":
        (tmp_path / "l.db").write_bytes(b"")  # there: the data directory is what fails
        args += ["--legacy-db", str(tmp_path / "l.db"), "--legacy-images", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "modelshelf", command, *args],
        cwd=tmp_path,
        env=service_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"modelshelf: cannot open {tmp_path / 'data'}: "), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_ctrl_c_stops_modelshelf_scan_at_a_safe_point_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    loras = tmp_path / "loras"
    for i in range(400):
        make_model_file(loras / f"lora {i}.safetensors", size=16_384, seed=i)
    env = service_environ() | {"MODELSHELF_MODEL_ROOTS": f"loras={loras}"}
    command = [sys.executable, "-m", "modelshelf", "scan", "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        [*command, "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As at a terminal. A test run started as a shell's background job ignores SIGINT,
        # and an ignored signal stays ignored across exec: the scan would never see it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    for line in process.stderr:  # the scan has begun
        if re.search(r"scan \(job [0-9a-f]{32}\): starting", line):
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert "interrupted; run it again to go on from here" in err
    assert "Traceback" not in err
    assert out == ""
    assert check_library(tmp_path / "data") == []
    with sqlite3.connect(tmp_path / "data" / "modelshelf.db") as conn:
        jobs = conn.execute("SELECT state, error FROM jobs").fetchall()
        registered = conn.execute("SELECT count(*) FROM model_files").fetchone()[0]
    assert len(jobs) == 1 and jobs[0][0] == "cancelled"
    assert re.fullmatch(
        r"cancelled on request(; the [\d,]+ of [\d,]+ done before it are kept)?", jobs[0][1]
    )
    assert registered < 400

    again = run_scan_cli(tmp_path, "--no-progress", MODELSHELF_MODEL_ROOTS=f"loras={loras}")

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["unchanged"] == registered
