"""Helpers for scan tests: a library over real model folders, a scan run through the real
app's Shelf, a progress listener that records what it is told, and reads through the API."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshelf.domain.scan import scan_library
from modelshelf.domain.scan_report import ScanResult
from tests.conftest import Client, MakeClient, shelf_of


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Recorder:
    """A ScanProgress that records every call."""

    phases: list[str] = field(default_factory=list)
    found_counts: list[int] = field(default_factory=list)
    plans: list[tuple[int, int]] = field(default_factory=list)
    bytes_hashed: int = 0
    done: list[str] = field(default_factory=list)

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def found(self, files: int) -> None:
        self.found_counts.append(files)

    def planned(self, files: int, hash_bytes: int) -> None:
        self.plans.append((files, hash_bytes))

    def hashed(self, count: int) -> None:
        self.bytes_hashed += count

    def file_done(self, path: str) -> None:
        self.done.append(path)


async def start(make_client: MakeClient, **roots: Path | list[Path]) -> Client:
    """The real app with `model_roots` = roots (type=folder or folders)."""
    model_roots = {k: v if isinstance(v, list) else [v] for k, v in roots.items()}
    return await make_client(model_roots=model_roots)


async def scan(
    client: Client, types: list[str] | None = None, progress: Recorder | None = None
) -> dict[str, Any]:
    """Run a scan through the app's Shelf; returns its result as JSON."""
    result: ScanResult = await scan_library(shelf_of(client), types, progress or Recorder())
    return result.as_json()


async def model(client: Client, sha256: str) -> dict[str, Any]:
    response = await client.get(f"/api/models/{sha256}")
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


async def models(client: Client, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/api/models", params={"limit": "500", **query})
    body = await response.json()
    assert response.status == 200, body
    found: list[dict[str, Any]] = body["models"]
    return found


def problems(result: dict[str, Any]) -> dict[str, str]:
    return {p["path"]: p["reason"] for p in result["problems"]}
