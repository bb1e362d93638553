"""Bodies of the jobs API and of endpoints that start jobs (`Prefer: respond-async`)."""

from __future__ import annotations

from pydantic import BaseModel

from modelshelf.records import Job
from modelshelf.web.bodies import ErrorBody


class JobResponse(BaseModel):
    """A job just started or just asked to stop (202)."""

    job: Job


class JobsResponse(BaseModel):
    """Queued and running jobs first (oldest first), then the last 50 that ended (newest
    first)."""

    jobs: list[Job]


class JobConflictBody(ErrorBody):
    """409: a job of this kind is running (or the job has already ended); `job` is that job."""

    job: Job
