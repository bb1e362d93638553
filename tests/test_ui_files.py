"""The web UI as files: the page at / and at every client route, under a path prefix too; the
assets with their types, versioned URLs and caching; nothing that reaches outside the service."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from modelshelf.domain.strategies import Strategy
from modelshelf.web import ui_api
from tests.conftest import Client, MakeClient

SHA = "ab" * 32


async def page_text(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    return await response.text()


def asset_urls(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="(ui/[0-9a-f]+/[a-z0-9_-]+\.(?:js|css))"', page)


@pytest.mark.parametrize("path", ["/", "/pending", "/jobs", "/tags", f"/models/{SHA}"])
async def test_every_client_route_serves_the_page(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<base href="/">' in await response.text()


async def test_a_model_route_with_a_malformed_hash_is_a_404_page(client: Client) -> None:
    response = await client.get("/models/not-a-hash")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("text/html")


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/nonexistent/page", "/settings", "/models"])
async def test_a_browser_at_an_address_the_ui_lacks_gets_its_404_page(
    client: Client, method: str, path: str
) -> None:
    # The page draws "No such page" with a link back; its links hold at any depth (<base>).
    response = await client.request(method, path, headers=BROWSER)
    assert response.status == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    if method == "GET":
        assert '<base href="/">' in await response.text()


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/nonexistent/page", {"Accept": "application/json"}), ("/api/nothing", BROWSER)],
    ids=["json-client", "api-path"],
)
async def test_a_client_or_an_api_path_still_gets_the_json_404(
    client: Client, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)
    assert response.status == 404
    assert (await response.json())["error"] == "Not Found"


async def test_the_page_answers_304_to_its_etag(client: Client) -> None:
    first = await client.get("/")
    again = await client.get("/", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


async def test_assets_are_versioned_cached_for_a_year_and_typed(client: Client) -> None:
    urls = asset_urls(await page_text(client, "/"))
    assert "ui/" in urls[0] and any(u.endswith("main.js") for u in urls)
    for url in urls:
        response = await client.get("/" + url)
        assert response.status == 200, url
        assert response.headers["Cache-Control"] == ui_api.FOREVER
        expected = "text/css" if url.endswith(".css") else "text/javascript"
        assert response.headers["Content-Type"].startswith(expected)


async def test_an_old_version_gets_todays_file_without_long_caching(client: Client) -> None:
    response = await client.get("/ui/0123456789ab/main.js")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/ui/0123/missing.js", 404), ("/ui/0123/..%2Fui_api.py", 400), ("/ui/XYZ/main.js", 400)],
)
async def test_unknown_or_malformed_asset_names_are_json_errors(
    client: Client, path: str, status: int
) -> None:
    response = await client.get(path)
    assert response.status == status
    assert (await response.json())["error"]


async def test_assets_are_gzipped_for_clients_that_take_it(client: Client) -> None:
    url = next(u for u in asset_urls(await page_text(client, "/")) if u.endswith(".css"))
    response = await client.get(
        "/" + url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(await response.read())
    assert body == (ui_api.UI_FOLDER / "app.css").read_bytes()


async def test_assets_go_plain_to_a_client_that_refuses_gzip(client: Client) -> None:
    url = next(u for u in asset_urls(await page_text(client, "/")) if u.endswith(".css"))
    response = await client.get(
        "/" + url, headers={"Accept-Encoding": "gzip;q=0, identity"}, auto_decompress=False
    )
    assert "Content-Encoding" not in response.headers
    assert await response.read() == (ui_api.UI_FOLDER / "app.css").read_bytes()


async def test_under_a_path_prefix_the_page_and_assets_live_under_it(
    make_client: MakeClient,
) -> None:
    client = await make_client(path_prefix="/shelf")
    page = await page_text(client, "/shelf/")
    assert '<base href="/shelf/">' in page
    for url in asset_urls(page):
        assert (await client.get("/shelf/" + url)).status == 200
    assert (await client.get(f"/shelf/models/{SHA}")).status == 200
    assert (await client.get("/")).status == 404


@pytest.mark.parametrize("query", ["", "?q=pony"])
async def test_the_path_prefix_alone_leads_to_the_ui(make_client: MakeClient, query: str) -> None:
    client = await make_client(path_prefix="/shelf")
    response = await client.get(f"/shelf{query}", allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == f"/shelf/{query}"
    assert (await client.get(f"/shelf{query}")).status == 200


@pytest.mark.parametrize("prefix", ["", "/shelf"])
@pytest.mark.parametrize("page", ["/pending", "/jobs", "/tags", f"/models/{SHA}"])
@pytest.mark.parametrize("query", ["", "?q=pony"])
async def test_a_page_with_a_slash_after_it_leads_to_the_page(
    make_client: MakeClient, prefix: str, page: str, query: str
) -> None:
    client = await make_client(path_prefix=prefix)
    response = await client.get(f"{prefix}{page}/{query}", allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == f"{prefix}{page}{query}"
    followed = await client.get(f"{prefix}{page}/{query}")
    assert followed.status == 200
    assert followed.headers["Content-Type"].startswith("text/html")


async def test_an_endpoint_with_a_slash_after_it_is_still_not_found(client: Client) -> None:
    response = await client.get("/api/models/")
    assert response.status == 404
    assert "error" in await response.json()


def test_the_ui_loads_nothing_from_outside_the_service() -> None:
    outside = re.compile(r"""(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}""", re.I)
    for path in sorted(ui_api.UI_FOLDER.iterdir()):
        text = path.read_text("utf-8")
        # The one host named is where a Civitai model page is, a link a person may follow.
        assert set(outside.findall(text)) <= {"https://civitai.com"}, path.name


def test_the_ui_files_are_all_served(tmp_path: Path) -> None:
    bundle = ui_api.load_bundle(ui_api.UI_FOLDER, "")
    on_disk = {p.name for p in ui_api.UI_FOLDER.iterdir() if p.name != ui_api.INDEX}
    assert set(bundle.assets) == on_disk


@pytest.mark.parametrize(
    ("file", "table"), [("compare.js", "STRATEGIES"), ("pending.js", "CHOICES")]
)
def test_the_ui_offers_each_conflict_strategy_the_service_knows(file: str, table: str) -> None:
    """The strategies are defined once (domain.strategies.Strategy); the UI's buttons and
    choices, with their words for a person, must name each of them, and nothing else."""
    text = (ui_api.UI_FOLDER / file).read_text("utf-8")
    rows = re.search(rf"const {table} = \[(.*?)\];\n", text, re.S)
    assert rows is not None, table
    offered = [value for value in re.findall(r'\["([a-z]*)",', rows.group(1)) if value]
    assert sorted(offered) == sorted(Strategy), file
