"""The headers the OpenAPI document declares are the ones the real app answers with. For every
operation that honours a condition (If-Match, If-None-Match) or sets a version (ETag,
Images-Version, Last-Modified), the requests below make each of its answers that carry one,
and: every such header the app sets is declared at that status; every header declared as
always set is set; every declared one is met; every declared If-Match is answered 412 when it
does not match and every declared If-None-Match 304 when it does. A handler that starts setting
one, or stops, fails here until its endpoint says so (and `make docs` renders it again).

Through the real app, on the library of tests/test_edit_races.py: model M with four images and
pending model PENDING of M's content (so preview_import finds M `existing`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.progress import Progress
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, shelf_of
from tests.factories import make_image
from tests.test_edit_races import PENDING, library_copy
from tests.test_jobs import follow
from tests.test_ui_files import asset_urls

WATCHED = ("ETag", "Images-Version", "Last-Modified")
CONDITIONS = ("If-Match", "If-None-Match")
NOT_HELD = '"not-this-version"'
MODEL = "/api/models/{sha256}"
FILE = "/api/images/{filename}"
PENDING_FILE = "/api/images/pending/{id}"


@dataclass(frozen=True)
class Seen:
    """One answer: to which operation, with which status, carrying which watched headers, and
    which conditions its request sent."""

    operation: tuple[str, str]
    status: int
    headers: frozenset[str]
    sent: frozenset[str]


@dataclass
class Recorder:
    client: Client
    sha: str
    tmp_path: Path
    seen: list[Seen] = field(default_factory=list)

    async def __call__(
        self, method: str, template: str, path: str = "", **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """Send a request to the operation `method template` (at `path`, else the template
        itself) and keep what it answered."""
        response = await self.client.request(method, path or template, **kwargs)
        await response.read()
        sent = kwargs.get("headers", {})
        self.seen.append(
            Seen(
                (method, template),
                response.status,
                frozenset(name for name in WATCHED if name in response.headers),
                frozenset(name for name in CONDITIONS if name in sent),
            )
        )
        return response

    async def etag(self) -> str:
        response = await self.client.get(f"/api/models/{self.sha}")
        assert response.status == 200, await response.text()
        return response.headers["ETag"]

    def image_form(self) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("sha256", self.sha)
        picture = make_image(self.tmp_path / "upload.png", width=20, height=10).read_bytes()
        form.add_field("image", picture, filename="u.png", content_type="image/png")
        return form


Scenario = Callable[[Recorder], Awaitable[None]]


async def get_model(send: Recorder) -> None:
    path = f"/api/models/{send.sha}"
    etag = (await send("GET", MODEL, path)).headers["ETag"]
    await send("GET", MODEL, path, headers={"If-None-Match": etag})
    await send("GET", MODEL, path, headers={"If-Match": NOT_HELD})


async def _refused_then_done(
    send: Recorder, method: str, template: str, path: str, **kw: Any
) -> None:
    """The change with an If-Match that does not match (412), then with one that does."""
    body = kw.pop("body", dict)
    response = await send(method, template, path, headers={"If-Match": NOT_HELD}, **body())
    assert response.status == 412, await response.text()
    headers = {"If-Match": await send.etag()}
    response = await send(method, template, path, headers=headers, **body())
    assert response.status == 200, await response.text()


async def patch_model(send: Recorder) -> None:
    path = f"/api/models/{send.sha}"
    await _refused_then_done(send, "PATCH", MODEL, path, body=lambda: {"json": {"name": "B"}})


async def delete_model(send: Recorder) -> None:
    await _refused_then_done(send, "DELETE", MODEL, f"/api/models/{send.sha}")


async def put_tags(send: Recorder) -> None:
    template = "/api/models/{sha256}/tags"
    path = f"/api/models/{send.sha}/tags"
    await _refused_then_done(send, "PUT", template, path, body=lambda: {"json": {"tags": ["x"]}})


async def reorder(send: Recorder) -> None:
    order = [f"{send.sha}_{seq}.webp" for seq in (3, 2, 1, 0)]
    body = {"json": {"hash": send.sha, "order": order}}
    path = "/api/images/reorder"
    await _refused_then_done(send, "POST", path, path, body=lambda: body)


async def upload(send: Recorder) -> None:
    path = "/api/images/upload"
    await _refused_then_done(send, "POST", path, path, body=lambda: {"data": send.image_form()})


async def delete_image(send: Recorder) -> None:
    await _refused_then_done(send, "DELETE", FILE, f"/api/images/{send.sha}_1.webp")


async def import_a_model(send: Recorder) -> None:
    path = "/api/migration/import_a_model"
    body = {"json": {"id": PENDING, "conf_strategy": "override"}}
    await _refused_then_done(send, "POST", path, path, body=lambda: body)


async def restore(send: Recorder) -> None:
    changed = await send.client.patch(f"/api/models/{send.sha}", json={"name": "B"})
    assert changed.status == 200, await changed.text()
    history = await (await send.client.get(f"/api/models/{send.sha}/history")).json()
    entry = history["entries"][0]["id"]
    template = "/api/models/{sha256}/history/{id}/restore"
    response = await send("POST", template, f"/api/models/{send.sha}/history/{entry}/restore")
    assert response.status == 200, await response.text()


async def preview_import(send: Recorder) -> None:
    path = "/api/migration/preview_import"
    body = {"id": PENDING, "conf_strategy": "override"}
    with_existing = await send("POST", path, json=body)
    assert with_existing.status == 200, await with_existing.text()
    gone = await send.client.delete(f"/api/models/{send.sha}")
    assert gone.status == 200, await gone.text()
    await send("POST", path, json=body)  # nothing existing: no ETag


async def _tagged_list(
    send: Recorder, path: str, tagged: dict[str, str], untagged: dict[str, str]
) -> None:
    """A list answered with a weak ETag (304 to it), and without one when asked for more."""
    etag = (await send("GET", path, params=tagged)).headers["ETag"]
    again = await send("GET", path, params=tagged, headers={"If-None-Match": etag})
    assert again.status == 304
    await send("GET", path, params=untagged)


async def pending_models(send: Recorder) -> None:
    await _tagged_list(send, "/api/migration/pending_models", {}, {"checks": "true"})


async def list_jobs(send: Recorder) -> None:
    await _tagged_list(send, "/api/jobs", {"result": "false"}, {})


async def get_job(send: Recorder) -> None:
    shelf, release = shelf_of(send.client), asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        await release.wait()
        return {}

    async def done(progress: Progress) -> dict[str, Any]:
        return {}

    running = await shelf.jobs.start("scan", held, what="held")
    ended = await shelf.jobs.start("import_models", done, what="done")
    await follow(send.client, ended.id)
    template = "/api/jobs/{job_id}"
    try:
        await send("GET", template, f"/api/jobs/{running.id}")  # not kept: no ETag
        etag = (await send("GET", template, f"/api/jobs/{ended.id}")).headers["ETag"]
        headers = {"If-None-Match": etag}
        assert (await send("GET", template, f"/api/jobs/{ended.id}", headers=headers)).status == 304
    finally:
        release.set()
        await follow(send.client, running.id)


async def _file(send: Recorder, template: str, path: str) -> None:
    """A file: whole (twice: the second may come from memory), a range, 304 and 412."""
    etag = (await send("GET", template, path)).headers["ETag"]
    await send("GET", template, path)
    assert (await send("GET", template, path, headers={"Range": "bytes=0-9"})).status == 206
    assert (await send("GET", template, path, headers={"If-None-Match": etag})).status == 304
    assert (await send("GET", template, path, headers={"If-Match": NOT_HELD})).status == 412


async def serve_image(send: Recorder) -> None:
    await _file(send, FILE, f"/api/images/{send.sha}_1.webp")


async def serve_pending_image(send: Recorder) -> None:
    await _file(send, PENDING_FILE, f"/api/images/pending/{PENDING}")


async def ui_files(send: Recorder) -> None:
    """Every page and file of the UI: 200 with its ETag, 304 to it; a model page of no model
    is 404 with the page."""
    pages = ["/", "/pending", "/jobs", "/tags"]
    models = [(f"/models/{send.sha}", "/models/{sha256}"), ("/models/nope", "/models/{sha256}")]
    index = await (await send.client.get("/")).text()
    assets = [("/" + url, "/ui/{version}/{asset}") for url in asset_urls(index)]
    for path, template in [(p, p) for p in pages] + models + assets:
        etag = (await send("GET", template, path)).headers["ETag"]
        await send("GET", template, path, headers={"If-None-Match": etag})


SCENARIOS: dict[Scenario, set[tuple[str, str]]] = {
    get_model: {("GET", MODEL)},
    patch_model: {("PATCH", MODEL)},
    delete_model: {("DELETE", MODEL)},
    put_tags: {("PUT", "/api/models/{sha256}/tags")},
    reorder: {("POST", "/api/images/reorder")},
    upload: {("POST", "/api/images/upload")},
    delete_image: {("DELETE", FILE)},
    import_a_model: {("POST", "/api/migration/import_a_model")},
    restore: {("POST", "/api/models/{sha256}/history/{id}/restore")},
    preview_import: {("POST", "/api/migration/preview_import")},
    pending_models: {("GET", "/api/migration/pending_models")},
    list_jobs: {("GET", "/api/jobs")},
    get_job: {("GET", "/api/jobs/{job_id}")},
    serve_image: {("GET", FILE)},
    serve_pending_image: {("GET", PENDING_FILE)},
    ui_files: {("GET", p) for p in ("/", "/pending", "/jobs", "/tags", "/models/{sha256}")}
    | {("GET", "/ui/{version}/{asset}")},
}


def _operations() -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for path, methods in build_openapi()["paths"].items():
        for method, operation in methods.items():
            yield (method.upper(), path), operation


def _conditions(operation: dict[str, Any]) -> set[str]:
    return {
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "header" and p["name"] in CONDITIONS
    }


def test_every_operation_with_a_declared_condition_or_version_is_checked_below() -> None:
    checked = set().union(*SCENARIOS.values())
    declaring = {
        key
        for key, operation in _operations()
        if _conditions(operation)
        or any("headers" in response for response in operation["responses"].values())
    }
    assert declaring - checked == set()
    assert checked - declaring == set(), "checked, but the document declares nothing of it"


@pytest.fixture
async def recorder(
    aiohttp_client: Any, tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path
) -> Recorder:
    client, sha = await library_copy(aiohttp_client, tmp_path_factory, data_dir)
    return Recorder(client, sha, tmp_path)


@pytest.mark.parametrize("scenario", list(SCENARIOS), ids=lambda s: s.__name__)
async def test_the_declared_headers_are_those_the_app_answers_with(
    recorder: Recorder, scenario: Scenario
) -> None:
    await scenario(recorder)
    operations = dict(_operations())
    assert {seen.operation for seen in recorder.seen} == SCENARIOS[scenario]
    for key in SCENARIOS[scenario]:
        _assert_declared_as_answered(key, operations[key], recorder.seen)


def _assert_declared_as_answered(
    key: tuple[str, str], operation: dict[str, Any], seen: list[Seen]
) -> None:
    mine = [s for s in seen if s.operation == key]
    responses = operation["responses"]
    for answer in mine:
        assert str(answer.status) in responses, (key, answer)
        declared = responses[str(answer.status)].get("headers", {})
        assert answer.headers <= declared.keys(), (key, answer, "set but not declared")
        always = {name for name, header in declared.items() if header["required"]}
        assert always <= answer.headers, (key, answer, "declared as always set, but not set")
    for status, response in responses.items():
        met = set().union(*(s.headers for s in mine if str(s.status) == status))
        assert set(response.get("headers", {})) <= met, (key, status, "declared, never met")
    answered = {(name, s.status) for s in mine for name in s.sent}
    expected = {"If-Match": 412, "If-None-Match": 304}
    for name in _conditions(operation):
        assert (name, expected[name]) in answered, (key, f"{name} never answered as honoured")
    for name in {name for name, _ in answered} - _conditions(operation):
        pytest.fail(f"{key} was sent {name}, which its document does not declare")
