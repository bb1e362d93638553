"""The pending page's queue as the browser tests reach it: the page opened on its rows, and a
seeded pending model's row."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Visit
from tests.ui.seed import SeededLibrary


def open_pending(visit: Visit) -> Any:
    """The pending page, once its first row is drawn."""
    page = visit.page
    page.goto("/pending")
    page.locator(".queue > li").first.wait_for()
    return page


def row(page: Any, library: SeededLibrary, role: str) -> Any:
    """The queue's row of the seeded pending model `role`."""
    return page.locator(f".queue > li[data-id='{library.pending[role]}']")
