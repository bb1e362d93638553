"""The API in one table: each endpoint's route, handler and bodies. The aiohttp routes and the
OpenAPI document are both generated from it, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from modelshelf.imagefolder import PUBLIC_NAME
from modelshelf.records import SHA256_PATTERN, ModelRecord
from modelshelf.web import images_api, migration_api, models_api, system_api
from modelshelf.web.bodies import (
    BatchImportRequest,
    BatchImportResponse,
    ConflictBody,
    DeleteImageResponse,
    HealthBody,
    ImageQuery,
    ImportRequest,
    ImportResponse,
    MigrateLegacyRequest,
    MigrationResponse,
    ModelsPage,
    ModelsQuery,
    PendingModelsResponse,
    SampleImages,
    SampleImagesRequest,
    TagsResponse,
    TypesResponse,
    UploadResponse,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A response is a pydantic model (JSON), a media type (a file), or None (an ErrorBody).
Answer = type[BaseModel] | str | None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    multipart: bool = False
    responses: dict[int, Answer] = field(default_factory=dict)


JSON_ERRORS: dict[int, Answer] = {400: None, 413: None}
# What a path parameter must look like; handlers check the same patterns (and answer 400).
PATH_PARAMETERS: dict[str, dict[str, str]] = {
    "id": {"type": "string", "pattern": r"^[0-9]{1,18}$"},
    "sha256": {"type": "string", "pattern": SHA256_PATTERN.pattern},
    "filename": {"type": "string", "pattern": f"^{PUBLIC_NAME.pattern}$"},
}
IMAGE = "image/webp"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/health",
        system_api.health,
        "Liveness: the database is open",
        responses={200: HealthBody},
    ),
    Endpoint(
        "GET",
        "/api/openapi.json",
        system_api.openapi,
        "This document",
        responses={200: "application/json"},
    ),
    Endpoint(
        "POST",
        "/api/migration/migrate_legacy_db",
        migration_api.migrate_legacy_db,
        "Stage 1: import a legacy library",
        body=MigrateLegacyRequest,
        responses={
            200: MigrationResponse,
            **JSON_ERRORS,
            403: None,
            404: None,
            423: None,
            503: None,
            507: None,
        },
    ),
    Endpoint(
        "GET",
        "/api/migration/pending_models",
        migration_api.pending_models,
        "Models waiting for promotion",
        responses={200: PendingModelsResponse},
    ),
    Endpoint(
        "POST",
        "/api/migration/import_a_model",
        migration_api.import_a_model,
        "Stage 2: promote a pending model by id",
        body=ImportRequest,
        responses={
            200: ImportResponse,
            **JSON_ERRORS,
            404: None,
            409: ConflictBody,
            422: None,
            423: None,
            503: None,
            507: None,
        },
    ),
    Endpoint(
        "POST",
        "/api/migration/import_models",
        migration_api.import_models,
        "Stage 2 for many ids, with a result per id",
        body=BatchImportRequest,
        responses={207: BatchImportResponse, **JSON_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/images/get_sample_imgs",
        images_api.get_sample_imgs,
        "Names of a model's example images, ordered by seq",
        body=SampleImagesRequest,
        responses={200: SampleImages, **JSON_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/images/upload",
        images_api.upload_image,
        "Add an example image (multipart: image, sha256)",
        multipart=True,
        responses={200: UploadResponse, **JSON_ERRORS, 404: None, 503: None, 507: None},
    ),
    Endpoint(
        "GET",
        "/api/images/pending/{id}",
        images_api.serve_pending_image,
        "The original image of a pending model",
        responses={200: "image/*", 304: "", 400: None, 404: None},
    ),
    Endpoint(
        "GET",
        "/api/images/{filename}",
        images_api.serve_image,
        "An example image: <sha256>_<seq>.webp or <sha256>.webp (seq 0)",
        query=ImageQuery,
        responses={200: IMAGE, 206: IMAGE, 304: "", 400: None, 404: None, 416: None},
    ),
    Endpoint(
        "DELETE",
        "/api/images/{filename}",
        images_api.delete_image,
        "Delete an example image; later seqs move down by one",
        responses={200: DeleteImageResponse, 400: None, 404: None, 503: None},
    ),
    Endpoint(
        "GET",
        "/api/models",
        models_api.list_models,
        "Browse the library, a page at a time",
        query=ModelsQuery,
        responses={200: ModelsPage, 400: None},
    ),
    Endpoint(
        "GET",
        "/api/models/get_types",
        models_api.list_types,
        "Model types in use",
        responses={200: TypesResponse},
    ),
    Endpoint(
        "GET",
        "/api/models/{sha256}",
        models_api.get_model,
        "One model, in full",
        responses={200: ModelRecord, 400: None, 404: None},
    ),
    Endpoint(
        "GET",
        "/api/tags",
        models_api.list_tags,
        "Tags with their model counts",
        responses={200: TagsResponse},
    ),
]


def setup_routes(app: web.Application, prefix: str = "") -> None:
    """Register every endpoint under `prefix` (for a reverse proxy serving a sub-path)."""
    for endpoint in ENDPOINTS:
        if endpoint.method == "GET":  # add_get also answers HEAD (add_route does not)
            app.router.add_get(prefix + endpoint.path, endpoint.handler)
        else:
            app.router.add_route(endpoint.method, prefix + endpoint.path, endpoint.handler)
