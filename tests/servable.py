"""Checks shared by the tests of hostile input: whatever stage 1 wrote is answered by every read
endpoint, every row is accounted for, and nothing was left in staging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Client

ROW_OUTCOMES = ("models_imported", "pending_created", "already_migrated", "rows_refused")


async def get_json(client: Client, url: str, **kwargs: Any) -> Any:
    method = client.post if "json" in kwargs else client.get
    response = await method(url, **kwargs)
    body = await response.read()
    assert response.status == 200, (url, response.status, body[:500])
    return await response.json()


async def assert_everything_served(client: Client) -> None:
    """Every model and pending model, by every read endpoint, and every image they name."""
    page = await get_json(client, "/api/models", params={"limit": "500"})
    for model in page["models"]:
        sha256 = model["sha256"]
        assert (await get_json(client, f"/api/models/{sha256}"))["sha256"] == sha256
        names = await get_json(client, "/api/images/get_sample_imgs", json={"hash": sha256})
        assert names == model["images"]
        for name in names:
            response = await client.get(f"/api/images/{name}", params={"quality": "low"})
            assert response.status == 200, name
            await response.read()
    pending = await get_json(client, "/api/migration/pending_models")
    for record in pending["models"]:
        for image in record["images"]:
            response = await client.get(f"/api/images/{image}")
            assert response.status == 200, image
            await response.read()
    await get_json(client, "/api/tags")
    await get_json(client, "/api/models/get_types")


def assert_rows_accounted_for(report: dict[str, Any]) -> None:
    counts = report["db_migration"]
    assert sum(counts[k] for k in ROW_OUTCOMES) == counts["legacy_models"], counts


def staging_entries(data_dir: Path) -> list[str]:
    staging = data_dir / "images" / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []
