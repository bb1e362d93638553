"""HTTP handlers for migration: stage 1 (legacy import), pending models, stage 2 (promotion)."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from modelshelf.domain import catalog, legacy_import, promotion
from modelshelf.web.bodies import (
    BatchImportRequest,
    BatchImportResponse,
    BatchResult,
    ConflictBody,
    ImportRequest,
    ImportResponse,
    LegacyLibrary,
    MigrateLegacyRequest,
    MigrationProblem,
    MigrationResponse,
    PendingModelsResponse,
)
from modelshelf.web.endpoint import JSON_ERRORS, Endpoint
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import parse_body, respond


async def migrate_legacy_db(request: web.Request) -> web.Response:
    body = await parse_body(request, MigrateLegacyRequest)
    shelf = request.app[SHELF]
    report = await shelf.finish(
        legacy_import.migrate_legacy_from_request(
            shelf, body.legacy_db_path, body.legacy_images_dir
        )
    )
    return await respond(request, migration_body(report), large=True)


def migration_body(report: legacy_import.MigrationReport) -> MigrationResponse:
    return MigrationResponse(
        db_migration=report.db_migration,
        image_migration=report.image_migration,
        library=LegacyLibrary(**report.library),
        problems=[MigrationProblem(**p) for p in report.problems],
        problems_not_listed=report.problems_not_listed,
    )


async def pending_models(request: web.Request) -> web.Response:
    models = await catalog.list_pending(request.app[SHELF])
    return await respond(request, PendingModelsResponse(models=models), large=True)


async def import_a_model(request: web.Request) -> web.Response:
    body = await parse_body(request, ImportRequest)
    shelf = request.app[SHELF]
    outcome = await shelf.finish(promotion.import_a_model(shelf, body.id, body.conf_strategy))
    return await respond(
        request,
        ImportResponse(sha256=outcome.sha256, action_taken=outcome.action_taken),
    )


async def import_models(request: web.Request) -> web.Response:
    body = await parse_body(request, BatchImportRequest)
    shelf = request.app[SHELF]
    results = await shelf.finish(
        promotion.import_models(shelf, body.ids, body.conf_strategy, shelf.settings.workers)
    )
    counts = Counter(r["result"] for r in results)
    response = BatchImportResponse(
        results=[BatchResult(**r) for r in results],
        counts={k: counts.get(k, 0) for k in promotion.BATCH_RESULTS},
    )
    return await respond(request, response, status=207, large=True)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/migration/migrate_legacy_db",
        migrate_legacy_db,
        "Stage 1: import a legacy library",
        body=MigrateLegacyRequest,
        responses={
            200: MigrationResponse,
            **JSON_ERRORS,
            403: None,
            404: None,
            422: None,
            423: None,
            503: None,
            507: None,
        },
    ),
    Endpoint(
        "GET",
        "/api/migration/pending_models",
        pending_models,
        "Models waiting for promotion",
        responses={200: PendingModelsResponse},
    ),
    Endpoint(
        "POST",
        "/api/migration/import_a_model",
        import_a_model,
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
        import_models,
        "Stage 2 for many ids, with a result per id",
        body=BatchImportRequest,
        responses={207: BatchImportResponse, **JSON_ERRORS},
    ),
]
