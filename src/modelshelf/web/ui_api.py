"""The web UI: its page and static files (HTML, CSS, ES modules from the package folder
`web/ui/`, no build step), held in memory with their hashes, and the client-side routes that
load the same page (`/models/<sha256>`, `/pending`, `/jobs`, `/tags`).

Assets live under `/ui/<version>/<name>`, where the version is a hash of every file: they are
cached for a year, and a new release changes every URL at once (relative imports between
modules keep the version, so no import map or build is needed). The page itself is
`no-cache` with an ETag, so a browser always learns the current version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.domain.tagging import MAX_TAG_NAME, REFUSED_RANGES
from modelshelf.errors import InvalidInput, NotFound
from modelshelf.records import is_sha256
from modelshelf.web.bodies import MAX_BATCH, MAX_FILTER_TEXT
from modelshelf.web.compression import takes_gzip
from modelshelf.web.edit_bodies import MAX_MODEL_NAME, MAX_MODEL_TYPE
from modelshelf.web.endpoint import PAGE_CONDITION, PAGE_ETAG, Answer, Endpoint, Handler
from modelshelf.web.keys import SETTINGS, SHELF
from modelshelf.web.parsing import path_sha256

UI_FOLDER = Path(__file__).parent / "ui"
INDEX = "index.html"
ASSET_NAME = re.compile(r"[a-z][a-z0-9_-]{0,40}\.(?:js|css)")
VERSION = re.compile(r"[0-9a-f]{1,64}")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
FOREVER = "public, max-age=31536000, immutable"
# The page names every source it may use; nothing outside the service can be loaded.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self';"
        " connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, the same gzipped, its type and its strong ETag."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, 9, mtime=0), CONTENT_TYPES[suffix], f'"{digest}"')


@dataclass(frozen=True)
class Bundle:
    """The UI as one release: a version (hash of all files), the page and the assets."""

    version: str
    index: Asset
    assets: dict[str, Asset]


def load_bundle(folder: Path, prefix: str) -> Bundle:
    """Read the UI folder and fill the page's placeholders for `prefix`. Blocking (files)."""
    assets: dict[str, Asset] = {}
    whole = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and ASSET_NAME.fullmatch(path.name):
            assets[path.name] = Asset.of(path.read_bytes(), path.suffix)
            whole.update(path.name.encode() + b"\0" + assets[path.name].etag.encode())
    version = whole.hexdigest()[:12]
    preloads = "\n".join(
        f'  <link rel="modulepreload" href="ui/{version}/{name}">'
        for name in sorted(assets)
        if name.endswith(".js") and name != "main.js"
    )
    page = (
        (folder / INDEX)
        .read_text("utf-8")
        .replace("{{base}}", _escape(prefix + "/"))
        .replace("{{version}}", version)
        .replace("{{preloads}}", preloads)
        .replace("{{capabilities}}", capabilities().replace("</", "<\\/"))
    )
    return Bundle(version, Asset.of(page.encode(), ".html"), assets)


def capabilities() -> str:
    """What this server offers, for the page to show only the controls that work: every
    operation ("GET /api/models"), its query parameters and statuses, from the endpoint table
    (the same source as the router and the OpenAPI document), so it costs the page no request."""
    from modelshelf.web.routes import ENDPOINTS  # the table lists this module too

    operations = {
        f"{e.method} {e.path}": {
            "query": sorted(e.query.model_fields) if e.query else [],
            "statuses": sorted(e.responses),
        }
        for e in ENDPOINTS
        if e.path.startswith("/api/")
    }
    # Limits the page checks before it sends (a field's maxlength), from the same constants.
    limits = {
        "tag_name": MAX_TAG_NAME,
        "filter_text": MAX_FILTER_TEXT,
        "models_tagged_at_once": MAX_MODELS,
        # Import and Discard selected send the pending models in parts of this many.
        "pending_models_at_once": MAX_BATCH,
        "model_name": MAX_MODEL_NAME,
        "model_type": MAX_MODEL_TYPE,
    }
    # The characters a name may not hold (ranges of code points, the table the server checks
    # with): a message about a refused name writes them as their codes, and only them (the
    # joiner of an emoji sequence is kept in a name, and shown).
    refused = [list(pair) for pair in REFUSED_RANGES]
    return json.dumps(
        {"operations": operations, "limits": limits, "refused_characters": refused},
        separators=(",", ":"),
        sort_keys=True,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


_BUNDLES: dict[str, Bundle] = {}


async def bundle_of(request: web.Request) -> Bundle:
    """The UI for this app's prefix, read once per process (in the reads pool); later
    requests take it from memory without a thread hop."""
    prefix = request.app[SETTINGS].path_prefix
    found = _BUNDLES.get(prefix)
    if found is None:
        found = _BUNDLES[prefix] = await request.app[SHELF].run_reads(
            load_bundle, UI_FOLDER, prefix
        )
    return found


def send(request: web.Request, asset: Asset, cache: str, status: int = 200) -> web.Response:
    """`asset` with its ETag (304 when the client has it) and gzip when the client takes it."""
    headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    if asset.content_type.startswith("text/html"):
        headers.update(SECURITY_HEADERS)
    if status == 200 and asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = asset.body
    if takes_gzip(request.headers):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = asset.content_type
    return web.Response(body=body, status=status, headers=headers)


async def page(request: web.Request) -> web.Response:
    return send(request, (await bundle_of(request)).index, "no-cache")


def asks_for_a_page(request: web.Request) -> bool:
    """Whether `request` is a browser going to an address (GET or HEAD taking HTML, not under
    the API): for an address the UI does not have, it is shown the UI's "No such page"."""
    api = f"{request.app[SETTINGS].path_prefix}/api/"
    return (
        request.method in ("GET", "HEAD")
        and _HTML in request.headers.get("Accept", "")
        and not request.path.startswith(api)
    )


async def missing_page(request: web.Request) -> web.Response:
    """The UI's page, status 404: it draws "No such page" with a way back to the library,
    where a JSON error would show a person raw text."""
    return send(request, (await bundle_of(request)).index, "no-cache", 404)


async def model_page(request: web.Request) -> web.Response:
    # The page draws "no such model" itself; the status tells crawlers and tests the same.
    status = 200 if is_sha256(path_sha256(request)) else 404
    return send(request, (await bundle_of(request)).index, "no-cache", status)


async def asset(request: web.Request) -> web.Response:
    version, name = request.match_info["version"], request.match_info["asset"]
    if not VERSION.fullmatch(version) or not ASSET_NAME.fullmatch(name):
        raise InvalidInput(f"{name[:60]!r} under {version[:20]!r} is not a UI asset name")
    bundle = await bundle_of(request)
    found = bundle.assets.get(name)
    if found is None:
        raise NotFound(f"the UI has no file {name!r}")
    # An old page asking for an old version gets today's file, but must not keep it.
    return send(request, found, FOREVER if version == bundle.version else "no-cache")


async def without_the_slash(request: web.Request) -> web.Response:
    """A page's path with a slash after it (typed, or pasted from a link that added one):
    always raises HTTPPermanentRedirect (308) to the page; served there, the page's relative
    links would resolve one folder too deep."""
    location = request.path.rstrip("/") + (
        f"?{request.query_string}" if request.query_string else ""
    )
    raise web.HTTPPermanentRedirect(location)


def page_paths() -> list[str]:
    """The paths of the UI's pages other than the library's (`/`, which has its slash)."""
    return [e.path for e in ENDPOINTS if e.handler in (page, model_page) and e.path != "/"]


_HTML = "text/html"


async def to_the_ui(request: web.Request) -> web.Response:
    """The path prefix without its slash: always raises HTTPPermanentRedirect (308) to the UI
    one slash further (a person types the prefix alone; the page's relative links need the
    slash)."""
    location = request.path + "/" + (f"?{request.query_string}" if request.query_string else "")
    raise web.HTTPPermanentRedirect(location)


def _kept(path: str, handler: Handler, summary: str, responses: dict[int, Answer]) -> Endpoint:
    """An endpoint of a UI file: every answer but an error carries its ETag, and is 304 to a
    client that holds it."""
    tagged = tuple(status for status, answer in responses.items() if answer is not None)
    return Endpoint(
        "GET",
        path,
        handler,
        summary,
        headers=(PAGE_CONDITION,),
        responses=responses,
        answer_headers=dict.fromkeys(tagged, (PAGE_ETAG,)),
    )


_PAGE: dict[int, Answer] = {200: _HTML, 304: ""}

ENDPOINTS: list[Endpoint] = [
    _kept("/", page, "The web UI: the library", _PAGE),
    _kept("/pending", page, "The web UI: pending models", _PAGE),
    _kept("/jobs", page, "The web UI: jobs", _PAGE),
    _kept("/tags", page, "The web UI: tags", _PAGE),
    _kept("/models/{sha256}", model_page, "The web UI: one model", {**_PAGE, 404: _HTML}),
    _kept(
        "/ui/{version}/{asset}",
        asset,
        "A file of the web UI (cached for a year under its version)",
        {200: "text/*", 304: "", 400: None, 404: None},
    ),
]
