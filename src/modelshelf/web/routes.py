"""The router: every endpoint of every `*_api` module, under the configured path prefix."""

from __future__ import annotations

from aiohttp import web

from modelshelf.imagefolder import PUBLIC_NAME
from modelshelf.records import SHA256_PATTERN
from modelshelf.web import images_api, migration_api, models_api, system_api, ui_api
from modelshelf.web.endpoint import Endpoint

ENDPOINTS: list[Endpoint] = [
    *system_api.ENDPOINTS,
    *migration_api.ENDPOINTS,
    *images_api.ENDPOINTS,
    *models_api.ENDPOINTS,
    *ui_api.ENDPOINTS,
]

# What a path parameter must look like; handlers check the same patterns (and answer 400).
PATH_PARAMETERS: dict[str, dict[str, str]] = {
    "id": {"type": "string", "pattern": r"^[0-9]{1,18}$"},
    "sha256": {"type": "string", "pattern": SHA256_PATTERN.pattern},
    "filename": {"type": "string", "pattern": f"^{PUBLIC_NAME.pattern}$"},
    "version": {"type": "string", "pattern": f"^{ui_api.VERSION.pattern}$"},
    "asset": {"type": "string", "pattern": f"^{ui_api.ASSET_NAME.pattern}$"},
}


def setup_routes(app: web.Application, prefix: str = "") -> None:
    """Register every endpoint under `prefix` (for a reverse proxy serving a sub-path)."""
    for endpoint in ENDPOINTS:
        if endpoint.method == "GET":  # add_get also answers HEAD (add_route does not)
            app.router.add_get(prefix + endpoint.path, endpoint.handler)
        else:
            app.router.add_route(endpoint.method, prefix + endpoint.path, endpoint.handler)
