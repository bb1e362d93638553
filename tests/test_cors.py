"""CORS through the real app: off by default; for the configured origins preflight requests
are answered and answers carry the headers a browser needs (ETag exposed for If-Match);
credentials are never allowed with the wildcard."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshelf.config import SettingsError, load_settings
from tests.conftest import Client, MakeClient
from tests.factories import fake_sha

PAGE = "http://localhost:8188"
OTHER = "https://evil.example"
UNKNOWN = fake_sha(999)


def preflight(method: str, headers: str = "Content-Type, If-Match") -> dict[str, str]:
    return {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


async def test_cors_is_off_by_default(client: Client) -> None:
    response = await client.get("/api/health", headers={"Origin": PAGE})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    answer = await client.options("/api/tags", headers={"Origin": PAGE, **preflight("POST")})
    assert answer.status == 405
    assert "Access-Control-Allow-Origin" not in answer.headers


@pytest.fixture
async def cors(make_client: MakeClient) -> Client:
    return await make_client(cors_origins=[PAGE])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", f"/api/models/{UNKNOWN}"),
        ("PUT", f"/api/models/{UNKNOWN}/tags"),
        ("POST", "/api/images/reorder"),
        ("DELETE", "/api/tags/1"),
        ("GET", "/api/models"),
    ],
)
async def test_a_preflight_from_an_allowed_origin_is_answered(
    cors: Client, method: str, path: str
) -> None:
    response = await cors.options(path, headers={"Origin": PAGE, **preflight(method)})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert method in response.headers["Access-Control-Allow-Methods"].split(",")
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"content-type", "if-match"} <= allowed
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_answers_to_an_allowed_origin_expose_the_etag(cors: Client) -> None:
    response = await cors.get("/api/models", headers={"Origin": PAGE})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert "etag" in exposed
    assert "Origin" in response.headers["Vary"]


async def test_error_answers_carry_cors_headers_too(cors: Client) -> None:
    response = await cors.get(f"/api/models/{UNKNOWN}", headers={"Origin": PAGE})
    assert response.status == 404
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert (await response.json())["error"] == "Not Found"


async def test_another_origin_gets_no_cors_headers(cors: Client) -> None:
    response = await cors.get("/api/models", headers={"Origin": OTHER})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    refused = await cors.options("/api/tags", headers={"Origin": OTHER, **preflight("POST")})
    assert refused.status == 403
    assert (await refused.json())["error"] == "Forbidden"


async def test_a_preflight_for_a_method_not_allowed_is_refused(cors: Client) -> None:
    response = await cors.options("/api/tags", headers={"Origin": PAGE, **preflight("TRACE")})
    assert response.status == 403


async def test_the_wildcard_allows_any_origin_but_never_credentials(
    make_client: MakeClient,
) -> None:
    client = await make_client(cors_origins=["*"])
    for origin in (PAGE, OTHER):
        answer = await client.get("/api/models", headers={"Origin": origin})
        assert answer.headers["Access-Control-Allow-Origin"] in (origin, "*")
        assert "Access-Control-Allow-Credentials" not in answer.headers
        flight = await client.options("/api/tags", headers={"Origin": origin, **preflight("POST")})
        assert flight.status == 200
        assert "Access-Control-Allow-Credentials" not in flight.headers


async def test_named_origins_keep_credentials_beside_the_wildcard(
    make_client: MakeClient,
) -> None:
    client = await make_client(cors_origins=["*", PAGE])
    named = await client.get("/api/models", headers={"Origin": PAGE})
    assert named.headers["Access-Control-Allow-Credentials"] == "true"
    anyone = await client.get("/api/models", headers={"Origin": OTHER})
    assert "Access-Control-Allow-Credentials" not in anyone.headers


async def test_cors_works_under_a_path_prefix(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=[PAGE], path_prefix="/shelf")
    response = await client.options(
        "/shelf/api/models", headers={"Origin": PAGE, **preflight("GET")}
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE


# --- the setting --------------------------------------------------------------------------------


def test_cors_origins_from_the_environment_are_comma_separated(tmp_path: Path) -> None:
    env = {"MODELSHELF_CORS_ORIGINS": f" {PAGE}/, HTTPS://Comfy.Example.org:8443 ,,"}
    settings = load_settings(environ=env, config_dir=tmp_path)
    assert settings.cors_origins == [PAGE, "https://comfy.example.org:8443"]


def test_cors_origins_default_to_none(tmp_path: Path) -> None:
    assert load_settings(environ={}, config_dir=tmp_path).cors_origins == []


@pytest.mark.parametrize("bad", ["localhost", "http://a.example/path", "http://", "https://a?x=1"])
def test_a_cors_origin_that_is_not_an_origin_is_a_settings_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SettingsError, match="cors_origins"):
        load_settings(environ={"MODELSHELF_CORS_ORIGINS": bad}, config_dir=tmp_path)
