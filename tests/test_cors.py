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


async def test_a_models_images_version_is_exposed_with_its_etag(cors: Client) -> None:
    """A front end on another origin tells a reorder made elsewhere by Images-Version, as the
    web UI does: unexposed, a browser hides it from the page's script."""
    response = await cors.get("/api/models", headers={"Origin": PAGE})
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "images-version"} <= exposed


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


# --- pages of other sites cannot change the library (cross-site request forgery) ---------------

# What a page of another site makes a browser send without a preflight: a "simple" request
# with a text/plain body, which the JSON endpoints read as JSON.
SIMPLE = {"Content-Type": "text/plain;charset=UTF-8"}


async def tag_names(client: Client) -> set[str]:
    return {t["name"] for t in (await (await client.get("/api/tags")).json())["tags"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/tags", '{"name": "planted"}'),
        ("POST", "/api/migration/import_models", '{"ids": [1], "conf_strategy": "override"}'),
        ("POST", "/api/scan", "{}"),
        ("DELETE", "/api/tags/1", None),
    ],
)
async def test_a_page_of_another_site_cannot_change_the_library(
    client: Client, method: str, path: str, body: str | None
) -> None:
    headers = {**SIMPLE, "Origin": OTHER, "Sec-Fetch-Site": "cross-site"}
    response = await client.request(method, path, data=body, headers=headers)
    assert response.status == 403
    answer = await response.json()
    assert answer["error"] == "Forbidden" and "cors_origins" in answer["detail"]
    assert await tag_names(client) == set()
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []


async def test_a_browser_too_old_to_say_the_site_is_judged_by_its_origin(client: Client) -> None:
    refused = await client.post(
        "/api/tags", data='{"name": "planted"}', headers={**SIMPLE, "Origin": OTHER}
    )
    assert refused.status == 403
    own = f"http://{client.server.host}:{client.server.port}"
    made = await client.post("/api/tags", json={"name": "own"}, headers={"Origin": own})
    assert made.status == 201
    assert await tag_names(client) == {"own"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin", "Origin": OTHER}, {"Sec-Fetch-Site": "none"}],
    ids=["a-script", "the-service-own-page-behind-a-proxy", "typed-by-a-person"],
)
async def test_scripts_and_the_service_own_pages_change_the_library(
    client: Client, headers: dict[str, str]
) -> None:
    response = await client.post("/api/tags", json={"name": "mine"}, headers=headers)
    assert response.status == 201
    assert await tag_names(client) == {"mine"}


async def test_a_page_of_another_site_still_reads_and_asks_first(client: Client) -> None:
    headers = {"Origin": OTHER, "Sec-Fetch-Site": "cross-site"}
    assert (await client.get("/api/tags", headers=headers)).status == 200
    assert (await client.head("/api/models", headers=headers)).status == 200


@pytest.mark.parametrize("origins", [[PAGE], ["*"]])
async def test_a_page_of_an_origin_of_cors_origins_changes_the_library(
    make_client: MakeClient, origins: list[str]
) -> None:
    client = await make_client(cors_origins=origins)
    headers = {"Origin": PAGE, "Sec-Fetch-Site": "same-site"}
    response = await client.post("/api/tags", json={"name": "from-comfy"}, headers=headers)
    assert response.status == 201
    other = {"Origin": OTHER, "Sec-Fetch-Site": "cross-site"}
    refused = await client.post("/api/tags", json={"name": "planted"}, headers=other)
    assert refused.status == (201 if origins == ["*"] else 403)


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
