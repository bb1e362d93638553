"""The load tests' HTTP client: every call timed per (phase, endpoint), the ledger of import
answers, and the reads a browsing person makes."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from load_measure import CpuShares
from modelshelf.renditions import qualities

QUALITIES = qualities()

EP_IMPORT = "POST /api/migration/import_a_model"
EP_BATCH = "POST /api/migration/import_models"
EP_PENDING = "GET /api/migration/pending_models"
EP_SAMPLES = "POST /api/images/get_sample_imgs"
EP_IMAGE = "GET /api/images/<name>?quality=*"
EP_MODELS = "GET /api/models?limit=50"
EP_MODEL = "GET /api/models/{sha256}"
EP_HEALTH = "GET /api/health (probe)"
# The reads a person browsing makes, and their issue-15 latency target.
READ_ENDPOINTS = (EP_SAMPLES, EP_MODELS, EP_MODEL, EP_PENDING, EP_IMAGE)
# Marks the reads of people browsing (paced), apart from the mixed phase's closed loop.
PERSON = " [person]"


@dataclass
class Answer:
    pending_id: int
    via: str  # "single", "repeat", "batch"
    strategy: str | None
    status: int  # HTTP status; batch items are mapped to 200/409/423/404/500
    sha256: str | None = None
    action: str | None = None


class Ledger:
    """Every import answer, and the bookkeeping of which ids are resolved."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.resolved: dict[int, Answer] = {}
        self.double: list[tuple[Answer, Answer]] = []

    def record(self, answer: Answer) -> None:
        self.answers.append(answer)
        if answer.status == 200:
            first = self.resolved.get(answer.pending_id)
            if first is not None:
                self.double.append((first, answer))
            else:
                self.resolved[answer.pending_id] = answer

    def by_id(self) -> dict[int, list[Answer]]:
        result: dict[int, list[Answer]] = defaultdict(list)
        for answer in self.answers:
            result[answer.pending_id].append(answer)
        return result


BATCH_STATUS = {"success": 200, "conflict": 409, "locked": 423, "not_found": 404, "failed": 500}


@dataclass
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    cpu: float = 0.0
    promotions: int = 0
    shares: CpuShares | None = None

    @property
    def wall(self) -> float:
        return self.ended - self.started


@dataclass
class Client:
    """State shared by the load clients of one run."""

    url: str
    session: aiohttp.ClientSession
    ledger: Ledger
    rng: random.Random
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[tuple[str, str], Counter[int]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)  # sha256 -> image names
    models_total: int = 0

    async def call(
        self,
        phase: str,
        endpoint: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            async with self.session.request(
                method, self.url + path, json=body, headers=headers
            ) as response:
                data = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors.append(f"{phase} {endpoint}: {type(exc).__name__}: {exc}")
            return -1, b""
        self.latencies[phase, endpoint].append(time.perf_counter() - started)
        self.statuses[phase, endpoint][status] += 1
        return status, data

    async def import_one(self, phase: str, pending_id: int, strategy: str | None, via: str) -> int:
        status, data = await self.call(
            phase,
            EP_IMPORT,
            "POST",
            "/api/migration/import_a_model",
            {"id": pending_id, "conf_strategy": strategy},
        )
        answer = Answer(pending_id, via, strategy, status)
        if status == 200:
            body = json.loads(data)
            answer.sha256, answer.action = body["sha256"], body["action_taken"]
            self.images.setdefault(body["sha256"], [])
        elif status == 409:
            body = json.loads(data)
            if not (body.get("error") == "Conflict" and body.get("existing") and body["pending"]):
                self.unexpected.append(f"409 without both records for id {pending_id}")
        elif status not in (404, 423):
            self.unexpected.append(f"import {pending_id} ({strategy}): {status} {data[:300]!r}")
        if status != -1:
            self.ledger.record(answer)
        return status

    async def import_batch(self, phase: str, ids: list[int], strategy: str | None) -> list[Answer]:
        status, data = await self.call(
            phase,
            EP_BATCH,
            "POST",
            "/api/migration/import_models",
            {"ids": ids, "conf_strategy": strategy},
        )
        if status != 207:
            if status != -1:
                self.unexpected.append(f"batch {ids}: {status} {data[:300]!r}")
            return []
        answers = []
        for item in json.loads(data)["results"]:
            answer = Answer(item["id"], "batch", strategy, BATCH_STATUS[item["result"]])
            if item["result"] == "success":
                answer.sha256, answer.action = item["sha256"], item["action_taken"]
                self.images.setdefault(item["sha256"], [])
            elif item["result"] == "failed":
                self.unexpected.append(f"batch item {item}")
            self.ledger.record(answer)
            answers.append(answer)
        return answers

    async def read_something(self, phase: str, what: str, who: str = "") -> None:
        """One read of the kind `what`; `who` is appended to the endpoint's name (PERSON for
        the paced clients of load_reads.browse)."""
        rng = self.rng
        if what == "pending":
            status, _ = await self.call(
                phase, EP_PENDING + who, "GET", "/api/migration/pending_models"
            )
        elif what == "models" or not self.images:
            offset = rng.randrange(0, max(1, self.models_total - 49))
            status, data = await self.call(
                phase, EP_MODELS + who, "GET", f"/api/models?limit=50&offset={offset}"
            )
            if status == 200:
                page = json.loads(data)
                self.models_total = int(page["total"])
                for model in page["models"]:
                    self.images.setdefault(model["sha256"], [])
        elif what == "model":
            sha = rng.choice(list(self.images))
            status, _ = await self.call(phase, EP_MODEL + who, "GET", f"/api/models/{sha}")
        elif what == "samples" or not any(self.images.values()):
            sha = rng.choice(list(self.images))
            status, data = await self.call(
                phase, EP_SAMPLES + who, "POST", "/api/images/get_sample_imgs", {"hash": sha}
            )
            if status == 200:
                self.images[sha] = json.loads(data)
        else:
            sha = rng.choice([h for h, names in self.images.items() if names])
            name = rng.choice(self.images[sha])
            quality = rng.choice(QUALITIES)
            status, _ = await self.call(
                phase, EP_IMAGE + who, "GET", f"/api/images/{name}?quality={quality}"
            )
        if status not in (200, -1):
            self.unexpected.append(f"{what}: {status}")
