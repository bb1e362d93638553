"""Handlers: the model roots a scan walks, and a scan of them as a job."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from modelshelf.domain import long_work, scan
from modelshelf.folders.roots import ModelRoots
from modelshelf.web.bodies import Body
from modelshelf.web.endpoint import JSON_ERRORS, Endpoint
from modelshelf.web.jobs_bodies import JobConflictBody, JobResponse
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import accepted, parse_body, respond

TypeName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ScanRequest(Body):
    """No body, or no `types`, scans every root."""

    types: list[TypeName] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="scan only the roots of these model types (`checkpoints`, `loras`, ...)",
    )


class ModelFolder(BaseModel):
    path: str = Field(description="an absolute path")
    type: str = Field(description="the type its models take (`loras`, `checkpoints`, ...)")
    present: bool = Field(description="whether it is a folder now (a missing one is kept)")


class ModelFoldersResponse(BaseModel):
    roots: list[ModelFolder] = Field(description="in the order a scan walks them")
    types: list[str] = Field(description="the types with a folder: what `types` of a scan take")
    warnings: list[str] = Field(description="what is wrong with them, or that none are named")

    @classmethod
    def of(cls, found: ModelRoots) -> ModelFoldersResponse:
        missing = {root for root, _why in found.missing}
        return cls(
            roots=[
                ModelFolder(path=str(root.path), type=root.type, present=root not in missing)
                for root in found.roots
            ],
            types=found.types,
            warnings=[*found.warnings] if found.roots else [scan.NO_ROOTS, *found.warnings],
        )


async def model_folders(request: web.Request) -> web.Response:
    found = await scan.model_roots(request.app[SHELF])
    return await respond(request, ModelFoldersResponse.of(found))


async def start_scan(request: web.Request) -> web.Response:
    body = await parse_body(request, ScanRequest, optional=True)
    job = await long_work.start_scan(request.app[SHELF], body.types)
    return accepted(request, job)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/scan/roots",
        model_folders,
        "The model folders a scan walks (model_roots and extra_model_paths.yaml), read now",
        responses={200: ModelFoldersResponse, 422: None},
    ),
    Endpoint(
        "POST",
        "/api/scan",
        start_scan,
        "Scan the model roots as a job, followed at `Location` (409 while a scan runs)",
        body=ScanRequest,
        body_optional=True,
        responses={
            202: JobResponse,
            **JSON_ERRORS,
            404: None,
            409: JobConflictBody,
            422: None,
            503: None,
            507: None,
        },
    ),
]
