"""The router: every endpoint of every `*_api` module, under the configured path prefix."""

from __future__ import annotations

import re

from aiohttp import web

from modelshelf.imagefolder import PUBLIC_NAME
from modelshelf.records import ROW_ID_MAX, ROW_ID_MIN, SHA256_ANY_CASE
from modelshelf.web import (
    duplicates_api,
    edits_api,
    images_api,
    jobs_api,
    migration_api,
    models_api,
    scan_api,
    system_api,
    tags_api,
    ui_api,
)
from modelshelf.web.endpoint import Endpoint
from modelshelf.web.middleware import answer_expect

ENDPOINTS: list[Endpoint] = [
    *system_api.ENDPOINTS,
    *migration_api.ENDPOINTS,
    *images_api.ENDPOINTS,
    *models_api.ENDPOINTS,
    *edits_api.ENDPOINTS,
    *tags_api.ENDPOINTS,
    *jobs_api.ENDPOINTS,
    *duplicates_api.ENDPOINTS,
    *scan_api.ENDPOINTS,
    *ui_api.ENDPOINTS,
]

# What a path parameter must look like; handlers check the same patterns (and answer 400).
PATH_PARAMETERS: dict[str, dict[str, str | int]] = {
    "id": {"type": "integer", "minimum": ROW_ID_MIN, "maximum": ROW_ID_MAX},
    "sha256": {"type": "string", "pattern": SHA256_ANY_CASE},
    "filename": {"type": "string", "pattern": f"^{PUBLIC_NAME.pattern}$"},
    "job_id": {"type": "string", "pattern": jobs_api.JOB_ID.pattern},
    "version": {"type": "string", "pattern": f"^{ui_api.VERSION.pattern}$"},
    "asset": {"type": "string", "pattern": f"^{ui_api.ASSET_NAME.pattern}$"},
}


def setup_routes(app: web.Application, prefix: str = "") -> None:
    """Register every endpoint under `prefix` (for a reverse proxy serving a sub-path); the
    prefix alone leads to the UI under it."""
    paths = {e.path for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        path = prefix + route_path(endpoint.path, paths)
        if endpoint.method == "GET":  # add_get also answers HEAD (add_route does not)
            app.router.add_get(path, endpoint.handler, expect_handler=answer_expect)
        else:
            app.router.add_route(
                endpoint.method, path, endpoint.handler, expect_handler=answer_expect
            )
    for page in ui_api.page_paths():
        app.router.add_get(prefix + route_path(page, paths) + "/", ui_api.without_the_slash)
    if prefix:
        app.router.add_get(prefix, ui_api.to_the_ui)


def route_path(path: str, paths: set[str]) -> str:
    """`path` as aiohttp routes it: a last parameter never takes a fixed name that another of
    `paths` has at its place. `/api/images/upload` is not an image's name (a GET there is 405,
    POST only), nor is `/api/images/pending` (404, the folder of /api/images/pending/{id})."""
    parent, _, last = path.rpartition("/")
    beside = {p[len(parent) + 1 :].split("/")[0] for p in paths if p.startswith(parent + "/")}
    taken = sorted(name for name in beside if not name.startswith("{"))
    if not (last.startswith("{") and taken):
        return path
    names = "|".join(re.escape(name) for name in taken)
    return f"{parent}/{{{last[1:-1]}:(?!(?:{names})$)[^/]+}}"
