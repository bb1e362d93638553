"""Handlers: start a scan of the model roots as a job."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints

from modelshelf.domain import long_work
from modelshelf.web.bodies import Body
from modelshelf.web.endpoint import JSON_ERRORS, Endpoint
from modelshelf.web.jobs_bodies import JobConflictBody, JobResponse
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import accepted, parse_body

TypeName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ScanRequest(Body):
    """No body, or no `types`, scans every root."""

    types: list[TypeName] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="scan only the roots of these model types (`checkpoints`, `loras`, ...)",
    )


async def start_scan(request: web.Request) -> web.Response:
    body = await parse_body(request, ScanRequest, optional=True)
    job = await long_work.start_scan(request.app[SHELF], body.types)
    return accepted(request, job)


ENDPOINTS: list[Endpoint] = [
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
