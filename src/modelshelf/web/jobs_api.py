"""HTTP handlers for jobs: the list, one job, its live events (server-sent events), cancel."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import aclosing

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from modelshelf.domain.revisions import IfNoneMatch
from modelshelf.errors import InvalidInput
from modelshelf.records import Job
from modelshelf.web.endpoint import IF_NONE_MATCH, TAGGED, Endpoint
from modelshelf.web.jobs_bodies import (
    JobConflictBody,
    JobResponse,
    JobsQuery,
    JobsResponse,
    ListedJob,
    ListedJobsResponse,
)
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import JSON, if_none_match, parse_query, respond

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
EVENT_STREAM = "text/event-stream"
# What aiohttp_sse sends with a stream besides its type (HEAD answers with them too).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A comment line sent this often keeps proxies from closing an idle stream, and is how a
# client that went away is noticed while its job stands still.
PING_EVERY_S = 15.0


def _job_id(request: web.Request) -> str:
    job_id = request.match_info["job_id"]
    if not JOB_ID.fullmatch(job_id):
        raise InvalidInput("a job id is 32 lowercase hex characters")
    return job_id


async def list_jobs(request: web.Request) -> web.Response:
    query = parse_query(request.query, JobsQuery)
    held = if_none_match(request)  # a malformed header is 400, whichever list is asked for
    jobs = await request.app[SHELF].jobs.listing(results=query.result)
    if query.result:
        return await respond(request, JobsResponse(jobs=jobs), large=True)
    listed = [ListedJob.model_construct(**dict(job)) for job in jobs]
    return _tagged_list(ListedJobsResponse(jobs=listed).model_dump_json(), held)


def _tagged_list(text: str, held: IfNoneMatch | None) -> web.Response:
    """The list without results, tagged by its content: the Pending page reads it every few
    seconds while shown (for batches started elsewhere), and an idle library's is answered
    304 without the body (12 KB with 50 ended jobs). Weak: the answer may be gzipped."""
    tag = f'"{hashlib.blake2b(text.encode(), digest_size=12).hexdigest()}"'
    headers = {"ETag": f"W/{tag}", "Cache-Control": "no-cache"}
    if held is not None and held.matches(tag):
        return web.Response(status=304, headers=headers)
    return web.Response(text=text, content_type=JSON, headers=headers)


async def get_job(request: web.Request) -> web.Response:
    job_id, held = _job_id(request), if_none_match(request)
    shelf = request.app[SHELF]
    if held is not None:  # asked before the result is read: a batch's is large
        known = await shelf.jobs.get(job_id, result=False)
        if known.ended and held.matches(_tag(known)):
            return _kept(web.Response(status=304), known)
    job = await shelf.jobs.get(job_id)
    return _kept(await respond(request, job, large=job.result is not None), job)


def _tag(job: Job) -> str:
    return f'"{job.id}.{job.state}.{job.finished_at}"'


def _kept(response: web.Response, job: Job) -> web.Response:
    """An ended job never changes: a browser keeps its answer and asks again with
    If-None-Match (304: the Jobs page reads every listed job's result at each visit). A
    running one is not kept. Weak: the same job is sent gzipped or not."""
    if job.ended:
        response.headers["ETag"] = f"W/{_tag(job)}"
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "no-store"
    return response


async def cancel_job(request: web.Request) -> web.Response:
    job = await request.app[SHELF].jobs.cancel(_job_id(request))
    return await respond(request, JobResponse(job=job), status=202)


async def job_events(request: web.Request) -> web.StreamResponse:
    """`progress` events (at most 4 a second) while the job runs, then one `end` event with
    the job; a job that has ended gets its `end` event at once."""
    follow = request.app[SHELF].jobs.follow(_job_id(request))
    async with aclosing(follow) as events:
        first = await anext(events)  # NotFound here is still an error answer
        if request.method == "HEAD":  # aiohttp_sse streams to GET alone (405 to HEAD)
            return web.Response(content_type=EVENT_STREAM, headers=STREAM_HEADERS)
        async with sse_response(request, ping_interval=PING_EVERY_S) as stream:
            sending = asyncio.ensure_future(_send_all(request, stream, first, events))
            # Ends when a ping finds the client gone: the job may not change for long, and
            # until it does, sending would not notice.
            gone = asyncio.ensure_future(stream.wait())
            try:
                await asyncio.wait([sending, gone], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sending, gone):
                    task.cancel()
                # Done with `events` before it is closed.
                await asyncio.wait([sending, gone])
    return stream


async def _send_all(
    request: web.Request,
    stream: EventSourceResponse,
    first: tuple[str, Job],
    events: AsyncIterator[tuple[str, Job]],
) -> None:
    try:
        await _send(request, stream, *first)
        async for name, job in events:
            await _send(request, stream, name, job)
    except ConnectionResetError:  # the client went away: nothing to tell anyone
        pass


async def _send(request: web.Request, stream: EventSourceResponse, name: str, job: Job) -> None:
    if job.result is None:
        data = job.model_dump_json()
    else:  # a result can be large (a batch of many ids)
        data = await request.app[SHELF].run_reads(job.model_dump_json)
    await stream.send(data, event=name)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/jobs",
        list_jobs,
        "Jobs: queued and running ones first, then the last 50 that ended; the list without"
        " results is tagged (ETag) and answered 304 to If-None-Match while it is unchanged",
        query=JobsQuery,
        headers=(IF_NONE_MATCH,),
        responses={200: JobsResponse, 304: "", 400: None},
        answer_headers=TAGGED,
    ),
    Endpoint(
        "GET",
        "/api/jobs/{job_id}",
        get_job,
        "One job; an ended one is tagged (ETag) and answered 304 to If-None-Match",
        headers=(IF_NONE_MATCH,),
        responses={200: Job, 304: "", 400: None, 404: None},
        answer_headers=TAGGED,
    ),
    Endpoint(
        "DELETE",
        "/api/jobs/{job_id}",
        cancel_job,
        "Cancel a job: it ends `cancelled` at its next safe point",
        responses={202: JobResponse, 400: None, 404: None, 409: JobConflictBody},
    ),
    Endpoint(
        "GET",
        "/api/jobs/{job_id}/events",
        job_events,
        "A job's progress as server-sent events: `progress` (at most 4 a second), then `end`",
        responses={200: EVENT_STREAM, 400: None, 404: None},
    ),
]
