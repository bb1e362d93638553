"""A scan from the jobs page against a real server whose model roots are real folders: the job
appears, runs live and ends with its counts; the models it found are in the library, the copy
it found is listed as a duplicate, a second scan reads nothing again, and the library shown
before a scan shows what it found after it. A scan that meets a root that does not exist and
a broken header lists each problem with its path and reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import make_model_file
from tests.model_folders import write_safetensors
from tests.server import ServerProcess
from tests.ui.conftest import Visit, visit_of


@pytest.fixture(scope="module")
def scanning_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ui-scan")
    loras = root / "models" / "loras"
    write_safetensors(loras / "Ink Wash Style.safetensors", {"ss_base_model_version": "sdxl"})
    write_safetensors(loras / "Paper Cut.safetensors", seed=2)
    make_model_file(root / "models" / "checkpoints" / "Dreamlike v2.ckpt", size=300_000, seed=7)
    make_model_file(root / "models" / "checkpoints" / "Dreamlike copy.ckpt", size=300_000, seed=7)
    roots = f"loras={loras};checkpoints={root / 'models' / 'checkpoints'}"
    server = ServerProcess(root / "data", root / "server.log", MODELSHELF_MODEL_ROOTS=roots).start()
    yield server
    server.kill()


@pytest.fixture
def scan_visit(browser: Any, scanning_server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, scanning_server)


def test_the_jobs_page_lists_the_model_folders_a_scan_walks(
    scan_visit: Visit, scanning_server: ServerProcess
) -> None:
    page = scan_visit.page
    page.goto("/jobs")
    folders = page.locator(".folder-list li")
    expect(folders).to_have_count(2)
    assert [re.sub(r"\s+", " ", t) for t in folders.all_inner_texts()] == [
        f"{scanning_server.data_dir.parent / 'models' / 'loras'} · loras",
        f"{scanning_server.data_dir.parent / 'models' / 'checkpoints'} · checkpoints",
    ]
    assert page.get_by_text("Model folders: 2 folders").is_visible()
    hint = page.locator("#scan-types-hint")
    expect(hint).to_contain_text("here: loras, checkpoints")


def test_a_type_no_folder_has_is_said_in_a_persons_words(scan_visit: Visit) -> None:
    """A type typed in "Only these types" that no folder has (a typo, or the singular) was
    refused with the server's "no model root has type 'lora'; the types with roots are: …",
    in its words and its Python quotes. The page says which type no folder has and which
    types the folders have; the focus stays in the field to mend it, and no scan starts."""
    page = scan_visit.page
    page.goto("/jobs")
    expect(page.locator("#scan-types-hint")).to_contain_text("here: loras, checkpoints")
    jobs_before = page.request.get("/api/jobs").json()["jobs"]
    field = page.get_by_label("Only these types")
    field.fill("loras, lora")
    page.get_by_role("button", name="Start scan").click()
    said = page.get_by_role("alert")
    expect(said).to_have_text(
        "No model folder is of the type “lora”; the folders' types are loras, checkpoints"
    )
    expect(field).to_be_focused()
    assert page.request.get("/api/jobs").json()["jobs"] == jobs_before


def test_a_scan_started_on_the_jobs_page_fills_the_library(scan_visit: Visit) -> None:
    page = scan_visit.page
    page.goto("/jobs")
    page.get_by_role("button", name="Start scan").click()

    job = page.locator(".job").first
    job.locator(".badge.state-done").wait_for()
    text = job.inner_text()
    assert "4 of 4 files" in text
    assert "new models: 3" in text
    assert "new copies of known models: 1" in text
    duplicates = page.get_by_text("Dreamlike copy.ckpt")
    duplicates.wait_for()

    job.get_by_role("link", name="Show the 3 new models").click()
    page.wait_for_url("**/?sort=created_at&order=desc")
    page.get_by_text("3 models").wait_for()
    page.get_by_role("link", name="Library", exact=True).click()
    page.get_by_text("3 models").wait_for()
    for name in ("Ink Wash Style", "Paper Cut"):
        page.get_by_text(name, exact=True).first.wait_for()
    # One model for the two copies, named after its first location.
    page.get_by_text(re.compile(r"^Dreamlike (copy|v2)$")).first.wait_for()

    # Nothing changed: a second scan finds every file unchanged.
    page.goto("/jobs")
    page.get_by_role("button", name="Start scan").click()
    page.locator(".job .stats", has_text="unchanged, not read: 4").wait_for()


def test_the_library_shown_before_a_scan_shows_what_it_found_after_it(
    scan_visit: Visit, scanning_server: ServerProcess
) -> None:
    page = scan_visit.page
    page.goto("/")
    count = page.locator(".page-head .count")
    page.wait_for_function("c => c.textContent !== ''", arg=count.element_handle())
    before = int(count.inner_text().split()[0])
    loras = scanning_server.data_dir.parent / "models" / "loras"
    write_safetensors(loras / "Late Arrival.safetensors", seed=11)

    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("button", name="Start scan").click()
    page.get_by_role("status").get_by_text("Scan of the model folders: done").wait_for()
    page.get_by_role("link", name="Library", exact=True).click()
    page.get_by_text("Late Arrival", exact=True).wait_for()
    total = page.request.get("/api/models?limit=1").json()["total"]
    assert total > before
    assert count.inner_text() == f"{total} models"


@pytest.fixture(scope="module")
def troubled_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[ServerProcess]:
    """Model roots with a file whose safetensors header is not JSON, and a root that does
    not exist."""
    root = tmp_path_factory.mktemp("ui-scan-problems")
    loras = root / "models" / "loras"
    write_safetensors(loras / "Fine.safetensors")
    header = b"this is not json"
    (loras / "broken.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    roots = f"loras={loras};vae={root / 'models' / 'vae'}"
    server = ServerProcess(root / "data", root / "server.log", MODELSHELF_MODEL_ROOTS=roots).start()
    yield server
    server.kill()


@pytest.fixture
def troubled_visit(browser: Any, troubled_server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, troubled_server)


def test_a_scans_problems_are_listed_with_their_paths_and_reasons(troubled_visit: Visit) -> None:
    page = troubled_visit.page
    page.goto("/jobs")
    page.get_by_role("button", name="Start scan").click()
    job = page.locator(".job").first
    job.locator(".badge.state-done").wait_for()
    # Said as the job ends, for 3.5 s: looked for first, before the reads below.
    said = "Scan of the model folders: done; 1 problem, 1 warning, 2 files found, 2 new models"
    page.get_by_role("status").get_by_text(said).wait_for()
    problems = job.locator(".findings.problems")
    assert problems.locator("strong").inner_text() == "1 problem"
    listed = problems.locator("li").all_inner_texts()
    assert len(listed) == 1 and "broken.safetensors: safetensors header:" in listed[0], listed
    # A root that does not exist is a warning, not listed again among the problems.
    assert "models/vae (vae) does not exist" in job.locator(".findings.warnings").inner_text()
