"""HTTP handlers for migration: stage 1 (legacy import), pending models, stage 2 (promotion)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aiohttp import web

from modelshelf.domain import catalog, discarding, long_work, preview, promotion
from modelshelf.domain.legacy_report import MigrationReport
from modelshelf.records import PendingRecord
from modelshelf.web.bodies import (
    BatchImportRequest,
    BatchImportResponse,
    ConflictBody,
    DiscardRequest,
    DiscardResponse,
    ImportRequest,
    ImportResponse,
    LegacyLibrary,
    MigrateLegacyRequest,
    MigrationProblem,
    MigrationResponse,
    PendingModelsResponse,
    PendingQuery,
)
from modelshelf.web.edit_bodies import PreviewResponse
from modelshelf.web.endpoint import (
    EXISTING_ETAG,
    IF_MATCH,
    IF_NONE_MATCH,
    JSON_ERRORS,
    PRECONDITION,
    PREFER,
    TAGGED,
    WRITE_ERRORS,
    Endpoint,
)
from modelshelf.web.jobs_bodies import JobConflictBody, JobResponse
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import (
    accepted,
    if_match,
    if_none_match,
    is_large,
    is_long,
    parse_body,
    parse_path_id,
    parse_query,
    prefers_async,
    respond,
    with_etag,
)

_PROCESS_MARK = uuid.uuid4().hex[:8]


async def migrate_legacy_db(request: web.Request) -> web.Response:
    body = await parse_body(request, MigrateLegacyRequest)
    shelf = request.app[SHELF]
    if prefers_async(request):
        job = await long_work.start_migrate_legacy(
            shelf, body.legacy_db_path, body.legacy_images_dir
        )
        return accepted(request, job)
    report = await long_work.run_migrate_legacy(shelf, body.legacy_db_path, body.legacy_images_dir)
    return await respond(request, MigrationResponse.model_validate(report), large=True)


def migration_body(report: MigrationReport) -> MigrationResponse:
    return MigrationResponse(
        db_migration=report.db_migration,
        image_migration=report.image_migration,
        library=LegacyLibrary(**report.library),
        problems=[MigrationProblem(**p) for p in report.problems],
        problems_not_listed=report.problems_not_listed,
    )


async def pending_models(request: web.Request) -> web.Response:
    query = parse_query(request.query, PendingQuery)
    shelf = request.app[SHELF]
    held = if_none_match(request)  # a malformed header is 400, whichever answer is asked for
    if query.checks:
        # Not tagged: a file gone, or a model imported, changes it with no pending row.
        return await _queue_body(request, *await catalog.check_pending(shelf))
    queue = await catalog.list_pending_unless(
        shelf, lambda generation: held is not None and held.matches(_queue_tag(generation))
    )
    # Weak: the answer may be gzipped. The Pending page asks every few seconds while shown.
    headers = {"ETag": f"W/{_queue_tag(queue.generation)}", "Cache-Control": "no-cache"}
    if queue.records is None:
        return web.Response(status=304, headers=headers)
    response = await _queue_body(request, queue.records, queue.chars)
    response.headers.update(headers)
    return response


def _queue_tag(generation: int) -> str:
    # With this process's mark: a database put back from a backup may count as far again.
    return f'"{_PROCESS_MARK}-{generation}"'


async def _queue_body(
    request: web.Request, models: Sequence[PendingRecord], chars: int
) -> web.Response:
    body = PendingModelsResponse(models=list(models))
    # Long by the count of its records, or by their length (megabytes of meta_json each).
    return await respond(request, body, large=is_large(len(models)) or is_long(chars))


async def discard_pending(request: web.Request) -> web.Response:
    pending_id = parse_path_id(request.match_info["id"], "a pending model id")
    shelf = request.app[SHELF]
    return await respond(request, await shelf.finish(promotion.discard_pending(shelf, pending_id)))


async def discard_pendings(request: web.Request) -> web.Response:
    body = await parse_body(request, DiscardRequest)
    shelf = request.app[SHELF]
    done = await shelf.finish(discarding.discard_pendings(shelf, body.ids))
    return await respond(request, DiscardResponse.model_validate(done, from_attributes=True))


async def import_a_model(request: web.Request) -> web.Response:
    body = await parse_body(request, ImportRequest)
    shelf = request.app[SHELF]
    precondition = if_match(request)
    outcome = await shelf.finish(
        promotion.import_a_model(shelf, body.id, body.conf_strategy, precondition)
    )
    return await respond(
        request,
        ImportResponse(sha256=outcome.sha256, action_taken=outcome.action_taken),
    )


async def preview_import(request: web.Request) -> web.Response:
    body = await parse_body(request, ImportRequest)
    shelf = request.app[SHELF]
    planned = await shelf.finish(preview.preview_import(shelf, body.id, body.conf_strategy))
    answer = PreviewResponse(
        action_taken=planned.action_taken,
        result=planned.result,
        existing=planned.existing,
        pending=planned.pending,
    )
    # Up to three whole records, of megabytes of meta_json each at times (a kohya header's
    # tag counts): serialised off the event loop, as the preview's hashing and planning are.
    response = await respond(request, answer, large=True)
    # The version of `existing` goes in a header, the body's shape being the contract's.
    return response if planned.existing_etag is None else with_etag(response, planned.existing_etag)


async def import_models(request: web.Request) -> web.Response:
    body = await parse_body(request, BatchImportRequest)
    shelf = request.app[SHELF]
    if prefers_async(request):
        job = await long_work.start_import_models(shelf, body.ids, body.conf_strategy)
        return accepted(request, job)
    results = await long_work.run_import_models(shelf, body.ids, body.conf_strategy)
    return await respond(
        request, BatchImportResponse.model_validate(results), status=207, large=True
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/migration/migrate_legacy_db",
        migrate_legacy_db,
        "Stage 1: import a legacy library (with `Prefer: respond-async`, as a job)",
        body=MigrateLegacyRequest,
        headers=(PREFER,),
        responses={
            200: MigrationResponse,
            202: JobResponse,
            **JSON_ERRORS,
            403: None,
            404: None,
            409: JobConflictBody,
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
        "Models waiting for promotion; the list without checks is tagged (ETag) and answered 304"
        " to If-None-Match while the queue is unchanged",
        query=PendingQuery,
        headers=(IF_NONE_MATCH,),
        responses={200: PendingModelsResponse, 304: "", 400: None},
        answer_headers=TAGGED,
    ),
    Endpoint(
        "DELETE",
        "/api/migration/pending_models/{id}",
        discard_pending,
        "Take a pending model out of the queue without importing it (its record, tag links"
        " and original image; never its model file)",
        responses={200: PendingRecord, 400: None, 404: None, 423: None, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/migration/discard_models",
        discard_pendings,
        "Discard many pending models at once, each as DELETE /api/migration/pending_models/{id}"
        " (one change; ids being imported are left, and said)",
        body=DiscardRequest,
        responses={200: DiscardResponse, **JSON_ERRORS, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/migration/import_a_model",
        import_a_model,
        "Stage 2: promote a pending model by id. With If-Match (the ETag of the library's model"
        " of the pending model's SHA256, as GET /api/models/{sha256} or preview_import's ETag"
        " header give it), only if that model is still one of those versions, whatever"
        " conf_strategy: else 412 and nothing changes, the pending model stays pending. With"
        " no model of that SHA256 in the library (deleted since), no tag matches, `*`"
        " neither (RFC 9110 13.1.1): 412. Without If-Match, as before",
        body=ImportRequest,
        headers=IF_MATCH,
        responses={
            200: ImportResponse,
            **JSON_ERRORS,
            404: None,
            409: ConflictBody,
            **PRECONDITION,
            422: None,
            423: None,
            503: None,
            507: None,
        },
    ),
    Endpoint(
        "POST",
        "/api/migration/preview_import",
        preview_import,
        "What import_a_model would do, changing nothing. When a model of the pending model's"
        " SHA256 is in the library (`existing`), the answer's ETag header is that model's"
        " version, as GET /api/models/{sha256} gives it: sent back as If-Match, the import"
        " is refused (412) if the model changed since",
        body=ImportRequest,
        responses={
            200: PreviewResponse,
            **JSON_ERRORS,
            404: None,
            409: ConflictBody,
            422: None,
            503: None,
            507: None,
        },
        answer_headers={200: (EXISTING_ETAG,)},
    ),
    Endpoint(
        "POST",
        "/api/migration/import_models",
        import_models,
        "Stage 2 for many ids, with a result per id (with `Prefer: respond-async`, as a job)",
        body=BatchImportRequest,
        headers=(PREFER,),
        responses={
            202: JobResponse,
            207: BatchImportResponse,
            **JSON_ERRORS,
            409: JobConflictBody,
            503: None,
            507: None,  # the job's row cannot be written on a full disk
        },
    ),
]
