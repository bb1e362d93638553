"""HTTP handlers for editing a model: its fields and tags (and the fields or tags of many
models at once), the order of its images, deleting it, and its history with restore. PATCH,
PUT tags, reorder and DELETE honour If-Match (and so do DELETE /api/images/{filename} and the
upload, in images_api); the answers of the first three carry the model's new ETag. Many
models can be tagged, edited or deleted in one request."""

from __future__ import annotations

from aiohttp import web

from modelshelf.domain import bulk_editing, bulk_tagging, edits, gallery
from modelshelf.records import ModelRecord
from modelshelf.web.bodies import SampleImages
from modelshelf.web.edit_bodies import (
    HistoryEntryBody,
    HistoryQuery,
    HistoryResponse,
    ModelPatchRequest,
    ModelsChangedResponse,
    ModelsDeleteRequest,
    ModelsEditRequest,
    ModelsRestoreRequest,
    ModelsTagsRequest,
    ModelTagsRequest,
    ReorderRequest,
    RestoredRecord,
)
from modelshelf.web.endpoint import (
    IF_MATCH,
    JSON_ERRORS,
    MODEL_ETAG,
    PRECONDITION,
    VERSIONS,
    WRITE_ERRORS,
    Endpoint,
)
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import (
    if_match,
    is_long,
    parse_body,
    parse_path_id,
    parse_query,
    path_sha256,
    respond,
    with_etag,
    with_versions,
)


async def patch_model(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelPatchRequest)
    shelf = request.app[SHELF]
    sha256, precondition = path_sha256(request), if_match(request)
    model = await shelf.finish(edits.patch_model(shelf, sha256, body.to_patch(), precondition))
    return with_etag(await respond(request, model.record, large=is_long(model.chars)), model.etag)


async def put_model_tags(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelTagsRequest)
    shelf = request.app[SHELF]
    sha256, precondition = path_sha256(request), if_match(request)
    model = await shelf.finish(edits.set_model_tags(shelf, sha256, body.tags, precondition))
    return with_etag(await respond(request, model.record, large=is_long(model.chars)), model.etag)


async def tag_models(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelsTagsRequest)
    shelf = request.app[SHELF]
    done = await shelf.finish(bulk_tagging.tag_models(shelf, body.hashes, body.add, body.remove))
    return await respond(request, ModelsChangedResponse.model_validate(done, from_attributes=True))


async def edit_models(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelsEditRequest)
    shelf = request.app[SHELF]
    done = await shelf.finish(bulk_editing.edit_models(shelf, body.hashes, body.to_patch()))
    return await respond(request, ModelsChangedResponse.model_validate(done, from_attributes=True))


async def delete_models(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelsDeleteRequest)
    shelf = request.app[SHELF]
    done = await shelf.finish(bulk_editing.delete_models(shelf, body.hashes))
    return await respond(request, ModelsChangedResponse.model_validate(done, from_attributes=True))


async def restore_models(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelsRestoreRequest)
    shelf = request.app[SHELF]
    done = await shelf.finish(bulk_editing.restore_models(shelf, body.hashes))
    return await respond(request, ModelsChangedResponse.model_validate(done, from_attributes=True))


async def delete_model(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    sha256, precondition = path_sha256(request), if_match(request)
    removed = await shelf.finish(edits.delete_model(shelf, sha256, precondition))
    return await respond(request, removed.record, large=is_long(removed.chars))


async def reorder_images(request: web.Request) -> web.Response:
    body = await parse_body(request, ReorderRequest)
    shelf = request.app[SHELF]
    model = await shelf.finish(
        gallery.reorder_images(shelf, body.hash.lower(), body.order, if_match(request))
    )
    return with_versions(await respond(request, SampleImages(model.record.images)), model)


async def model_history(request: web.Request) -> web.Response:
    query = parse_query(request.query, HistoryQuery)
    sha256 = path_sha256(request)
    entries = await edits.model_history(request.app[SHELF], sha256, query.before, query.limit)
    body = HistoryResponse(
        entries=[
            HistoryEntryBody(id=e.id, at=e.at, action=e.action, before=e.before) for e in entries
        ]
    )
    return await respond(request, body, large=True)


async def restore(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    entry_id = parse_path_id(request.match_info["id"], "a history entry id")
    restored = await shelf.finish(edits.restore(shelf, path_sha256(request), entry_id))
    record = RestoredRecord.of(restored.model.record, restored.note)
    answer = await respond(request, record, large=is_long(restored.model.chars))
    return with_etag(answer, restored.model.etag)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "PATCH",
        "/api/models/{sha256}",
        patch_model,
        "Change a model's name, type and meta_json (a JSON merge patch)",
        body=ModelPatchRequest,
        headers=IF_MATCH,
        responses={200: ModelRecord, **JSON_ERRORS, 404: None, **PRECONDITION, **WRITE_ERRORS},
        answer_headers={200: (MODEL_ETAG,)},
    ),
    Endpoint(
        "DELETE",
        "/api/models/{sha256}",
        delete_model,
        "Remove a model's record, tag links and renditions (never its model files)",
        headers=IF_MATCH,
        responses={200: ModelRecord, 400: None, 404: None, **PRECONDITION, **WRITE_ERRORS},
    ),
    Endpoint(
        "PUT",
        "/api/models/{sha256}/tags",
        put_model_tags,
        "Give a model exactly these tags (new names become tags)",
        body=ModelTagsRequest,
        headers=IF_MATCH,
        responses={200: ModelRecord, **JSON_ERRORS, 404: None, **PRECONDITION, **WRITE_ERRORS},
        answer_headers={200: (MODEL_ETAG,)},
    ),
    Endpoint(
        "POST",
        "/api/models/tags",
        tag_models,
        "Add and remove tags on many models at once (one change; new names become tags)",
        body=ModelsTagsRequest,
        responses={200: ModelsChangedResponse, **JSON_ERRORS, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/models/edit",
        edit_models,
        "Set the type or patch meta_json of many models at once (one change; each as PATCH)",
        body=ModelsEditRequest,
        responses={200: ModelsChangedResponse, **JSON_ERRORS, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/models/delete",
        delete_models,
        "Delete many models at once, each as DELETE /api/models/{sha256} (one change: all or"
        " none; changed lists those deleted, unchanged is empty)",
        body=ModelsDeleteRequest,
        responses={200: ModelsChangedResponse, **JSON_ERRORS, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/models/restore",
        restore_models,
        "Undo the delete of many models at once, each from its newest delete history entry"
        " (one change: all or none; without their images; unchanged lists those in the library,"
        " not_found those never deleted)",
        body=ModelsRestoreRequest,
        responses={200: ModelsChangedResponse, **JSON_ERRORS, **WRITE_ERRORS},
    ),
    Endpoint(
        "GET",
        "/api/models/{sha256}/history",
        model_history,
        "What a model was before each change, newest first (all, or a page of them)",
        query=HistoryQuery,
        responses={200: HistoryResponse, 400: None, 404: None},
    ),
    Endpoint(
        "POST",
        "/api/models/{sha256}/history/{id}/restore",
        restore,
        "Put back the fields, meta_json and tags recorded in a history entry",
        responses={200: RestoredRecord, 400: None, 404: None, **WRITE_ERRORS},
        answer_headers={200: (MODEL_ETAG,)},
    ),
    Endpoint(
        "POST",
        "/api/images/reorder",
        reorder_images,
        "Put a model's images in a new order: order[i] becomes seq i. The answer carries the"
        " model's new ETag and Images-Version",
        body=ReorderRequest,
        headers=IF_MATCH,
        responses={
            200: SampleImages,
            **JSON_ERRORS,
            404: None,
            409: None,
            **PRECONDITION,
            **WRITE_ERRORS,
        },
        answer_headers={200: VERSIONS},
    ),
]
