"""Bodies of the jobs API and of endpoints that start jobs (`Prefer: respond-async`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelshelf.records import Job
from modelshelf.web.bodies import ErrorBody, Query


class JobResponse(BaseModel):
    """A job just started or just asked to stop (202)."""

    job: Job


class JobsResponse(BaseModel):
    """Queued and running jobs first (oldest first), then the last 50 that ended (newest
    first)."""

    jobs: list[Job]


class JobsQuery(Query):
    result: bool = Field(
        True,
        description="false: each job without its `result` (GET /api/jobs/{job_id} has it), for"
        " a list read again and again: a batch import's result tells every model it was given",
    )


class ListedJob(Job):
    """A job listed without its result (`?result=false`): the key is left out."""

    result: dict[str, Any] | None = Field(default=None, exclude=True)


class ListedJobsResponse(BaseModel):
    jobs: list[ListedJob]


class JobConflictBody(ErrorBody):
    """409: a job of this kind is running (or the job has already ended); `job` is that job."""

    job: Job
