"""Schemathesis against the live service: every answer matches the OpenAPI document the
service publishes, and nothing a client sends produces a 5xx."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from modelshelf.domain.tagging import MAX_TAG_NAME
from modelshelf.records import folded_tag_name
from modelshelf.web.edit_bodies import MAX_MODEL_NAME, MAX_MODEL_TYPE
from modelshelf.web.routes import ENDPOINTS
from tests.factories import LegacyLibrary, fake_sha, make_model_file
from tests.server import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server over a small real library: models with images, pending models with images."""
    root = tmp_path_factory.mktemp("fuzz")
    data_dir = root / "data"
    legacy = LegacyLibrary(root / "legacy")
    legacy.add_tag(1, "checkpoint")
    for i in range(1, 4):
        legacy.add_model(
            i,
            hash_hex=fake_sha(i),
            tags=[1],
            images=[legacy.image(f"h{i}.png", width=64, height=48)],
        )
    for i in range(4, 7):
        path = root / f"m{i}.bin"
        make_model_file(path, size=4096, seed=i)
        legacy.add_model(i, path=str(path), images=[legacy.image(f"p{i}.jpg")])
    legacy.migrate_with_cli(data_dir, root / "no-config")
    server = ServerProcess(data_dir, root / "server.log").start()
    yield server
    # SIGTERM, not SIGKILL: the access log's last lines are written at exit, and checked below.
    server.signal(signal.SIGTERM)
    server.wait()
    server.kill()
    log = Path(server.log_path).read_text()
    # Our middleware logs every real fault as "unhandled error"; the access log shows any 5xx.
    # (aiohttp logs malformed HTTP it rejects itself, with a 400, as an ERROR: not a fault.)
    assert "unhandled error" not in log, log[-4000:]
    assert not re.search(r'HTTP/1\.[01]" 5\d\d ', log), log[-4000:]


@pytest.fixture(scope="module")
def api_schema(live_server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(live_server.url + "/api/openapi.json")


def tag_names_of(path: str, body: dict[str, Any]) -> list[str]:
    """The tag names a request's body sends."""
    if path in ("/api/tags", "/api/tags/{id}"):
        names = [body.get("name")]
    elif path == "/api/models/{sha256}/tags":
        names = body.get("tags") if isinstance(body.get("tags"), list) else []
    elif path == "/api/models/tags":
        names = [
            n for key in ("add", "remove") if isinstance(body.get(key), list) for n in body[key]
        ]
    else:
        names = []
    return [n for n in names if isinstance(n, str)]


def model_texts_of(path: str, body: dict[str, Any]) -> list[tuple[str, int]]:
    """The model names and types a request's body sends, each with its limit."""
    fields = {"/api/models/{sha256}": ("name", "type"), "/api/models/edit": ("type",)}
    limits = {"name": MAX_MODEL_NAME, "type": MAX_MODEL_TYPE}
    return [(body[f], limits[f]) for f in fields.get(path, ()) if isinstance(body.get(f), str)]


def over_a_limit_once_trimmed(path: str, body: dict[str, Any]) -> bool:
    """Whether a tag name, a model's name or its type is over its limit once trimmed."""
    texts = [(n, MAX_TAG_NAME) for n in tag_names_of(path, body)] + model_texts_of(path, body)
    return any(len(text.strip()) > limit for text, limit in texts)


def breaks_a_rule_no_schema_states(case: schemathesis.Case) -> bool:
    """Whether a request the schema allows breaks a rule JSON Schema cannot state, which the
    service answers with 400: a tag merged into itself (the path's id and the body's `into`),
    a tag name both added to and removed from models (compared as the service reads names:
    trimmed and lower-cased), a tag name, a model's name or type over its limit once trimmed,
    an edit of many models that names neither type nor meta_json."""
    body = case.body if isinstance(case.body, dict) else {}
    if over_a_limit_once_trimmed(case.path, body):
        return True
    if case.path == "/api/tags/{id}/merge":
        return body.get("into") == case.path_parameters.get("id")
    if case.path == "/api/models/tags":
        added, removed = (
            {folded_tag_name(n) for n in body.get(key, []) if isinstance(n, str)}
            for key in ("add", "remove")
        )
        return bool(added & removed)
    if case.path == "/api/models/edit":
        return not {"type", "meta_json"} & body.keys()
    return False


# Paths of a resource of their own that a path parameter can spell: DELETE /api/models/edit
# is a request to the bulk edit's resource (405), not to a model, however it was generated.
LITERAL_PATHS = {e.path for e in ENDPOINTS if "{" not in e.path}


def reaches_another_resource(case: schemathesis.Case) -> bool:
    """Whether the case's path, its parameters filled in, names another operation's resource."""
    return case.path != case.formatted_path and case.formatted_path in LITERAL_PATHS


# schemathesis' own pytest integration (from_fixture) reads a private pytest attribute that
# pytest 9 no longer has; its strategies driven by hypothesis directly do the same job.
@pytest.mark.parametrize(
    ("method", "path"), [(e.method, e.path) for e in ENDPOINTS], ids=lambda v: str(v)
)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_matches_the_published_schema(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def call(case: schemathesis.Case) -> None:
        if reaches_another_resource(case):
            return
        response = case.call()
        # A body over the size limit is refused (413) before it is read as JSON: a right answer
        # to invalid data, missing from the statuses schemathesis counts as a rejection.
        excluded = [negative_data_rejection] if response.status_code == 413 else []
        if mode == GenerationMode.POSITIVE and breaks_a_rule_no_schema_states(case):
            assert response.status_code == 400, response.text
            excluded.append(positive_data_acceptance)
        case.validate_response(response, excluded_checks=excluded)

    try:
        call()
    except Unsatisfiable:
        pytest.skip(f"{method} {path} has no input that can be made invalid")
