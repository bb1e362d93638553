"""Browser tests: Debian's Chromium driven by Playwright against a real server process over a
real library (stage 1 from a legacy library, real images). One browser for the session, a
fresh context (cookies, storage, cache) per test. Without Chromium or Playwright the tests
skip and say how to get them."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server import ServerProcess
from tests.ui.seed import SeededLibrary, seed_library

CHROMIUM = Path(os.environ.get("MODELSHELF_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: .venv/bin/pip install -e '.[test]'"
    if not CHROMIUM.exists():
        return (
            f"no Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it when run"
            " as root), or point MODELSHELF_CHROMIUM at one"
        )
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's synchronous API keeps an event loop running in the
    main thread for as long as the session's browser lives, and the async tests must not meet
    it."""
    here = Path(__file__).parent
    items.sort(key=lambda item: here in Path(item.path).parents)


@pytest.fixture(autouse=True)
def event_loop_is_never_blocked() -> None:
    """Replaces the root check for browser tests. The service here runs in a process of its
    own; the only loop in this process is Playwright's, whose callbacks run the test's own
    synchronous steps, so timing them would time the test, not the service."""


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary profile (user-data-dir) of its own.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> SeededLibrary:
    return seed_library(tmp_path_factory.mktemp("ui-library"))


def serve_library(library: SeededLibrary) -> Iterator[ServerProcess]:
    """A server of `library` (a fixture's body: `yield from serve_library(...)`), killed
    after."""
    process = ServerProcess(library.data_dir, library.data_dir.parent / "server.log").start()
    yield process
    process.kill()


@pytest.fixture(scope="session")
def server(library: SeededLibrary, browser: Any) -> Iterator[ServerProcess]:
    yield from serve_library(library)


# A seeded library and server of one module's own, for tests that count what the session
# library's other tests change (they import pending models, rename, discard). Such a module
# asks for `own_library` and overrides `visit` with `own_visit`.
@pytest.fixture(scope="module")
def own_library(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> SeededLibrary:
    return seed_library(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))


@pytest.fixture(scope="module")
def own_server(own_library: SeededLibrary, browser: Any) -> Iterator[ServerProcess]:
    yield from serve_library(own_library)


@pytest.fixture
def own_visit(browser: Any, own_server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, own_server)


Operations = dict[str, dict[str, Any]]
CAPABILITIES = re.compile(r'(<script type="application/json" id="capabilities">)(.*?)(</script>)')


def serve_as_if(
    page: Any, edit: Callable[[Operations], None], limits: dict[str, int] | None = None
) -> None:
    """Serve the pages as a server would whose endpoint table `edit` changed (an older server,
    or one with endpoints this branch does not have yet), and whose `limits` are these: the
    page reads the table and the limits it carries."""

    def handle(route: Any) -> None:
        if route.request.resource_type != "document":
            route.fallback()
            return
        response = route.fetch()
        match = CAPABILITIES.search(response.text())
        assert match, "the page carries no capabilities"
        data = json.loads(match.group(2).replace("<\\/", "</"))
        edit(data["operations"])
        data["limits"].update(limits or {})
        body = CAPABILITIES.sub(
            lambda m: m.group(1) + json.dumps(data) + m.group(3), response.text()
        )
        route.fulfill(response=response, body=body)

    page.route("**/*", handle)


@pytest.fixture(scope="session")
def operations(server: ServerProcess) -> set[str]:
    """What the server offers ("GET /api/models?sort" for a query parameter), from its OpenAPI
    document: tests of part-2 features skip on a server that does not have them yet."""
    with urllib.request.urlopen(server.url + "/api/openapi.json") as response:
        document = json.load(response)
    found = set()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            found.add(f"{method.upper()} {path}")
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found.add(f"{method.upper()} {path}?{parameter['name']}")
    return found


def needs(operations: set[str], *wanted: str) -> None:
    missing = [w for w in wanted if w not in operations]
    if missing:
        pytest.skip(f"the server does not offer {', '.join(missing)} yet")


class Visit:
    """A page in a fresh browser context, with every request and page error it saw."""

    def __init__(self, browser: Any, base_url: str, **options: Any) -> None:
        self.context = browser.new_context(
            base_url=base_url, viewport=options.pop("viewport", DESKTOP), **options
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def outside(self, base_url: str) -> list[str]:
        """Requests that left the service (data: URLs stay inside the page)."""
        origin = urlsplit(base_url).netloc
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and urlsplit(url).netloc != origin
        ]

    def close(self) -> None:
        self.context.close()


def visit_of(browser: Any, server: ServerProcess) -> Iterator[Visit]:
    """A Visit of `server` for one test (a fixture's body: `yield from visit_of(...)`); after
    it, the page must have met no error and asked nothing from outside the service."""
    opened = Visit(browser, server.url)
    yield opened
    opened.close()
    assert not opened.errors, opened.errors
    assert not opened.outside(server.url)


@pytest.fixture
def visit(browser: Any, server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, server)


def open_model(visit: Visit, library: SeededLibrary, name: str) -> Any:
    """The page of the seeded model `name`, once its heading is shown."""
    page = visit.page
    page.goto(f"/models/{library.hashes[name]}")
    page.get_by_role("heading", level=1, name=name).wait_for()
    return page


def route_duplicates(page: Any, count: int) -> None:
    """Serve the page `count` duplicated models (each at two paths) and no jobs: the Jobs
    page's Duplicates region at a collector's scale, without a library that large."""
    groups = [
        {
            "sha256": f"{n:064x}",
            "name": f"Copied {n:03d}",
            "size_bytes": 2**20,
            "files": [f"/a/copied {n:03d}.safetensors", f"/b/copied {n:03d}.safetensors"],
            "wasted_bytes": 2**20,
        }
        for n in range(count)
    ]
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    answer = {"groups": groups, "wasted_bytes": count * 2**20}
    page.route("**/api/duplicates", lambda r: r.fulfill(json=answer))


def wait_frames(page: Any, frames: int) -> None:
    """Until the page has drawn `frames` more frames: time for what a drawing reports
    (IntersectionObserver, ResizeObserver) to have been acted on."""
    page.evaluate(
        """n => new Promise((done) => {
             const frame = () => (--n ? requestAnimationFrame(frame) : done());
             requestAnimationFrame(frame);
           })""",
        frames,
    )
