from __future__ import annotations

from tests.conftest import Client


async def test_health_answers_ok(client: Client) -> None:
    response = await client.get("/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
