"""Typed keys for what the application holds."""

from __future__ import annotations

from aiohttp import web

from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.executors import Executors
from modelshelf.locks import KeyedLocks
from modelshelf.storage import Storage

SETTINGS = web.AppKey("settings", Settings)
EXECUTORS = web.AppKey("executors", Executors)
STORAGE = web.AppKey("storage", Storage)
PENDING_LOCKS = web.AppKey("pending_locks", KeyedLocks)
MODEL_LOCKS = web.AppKey("model_locks", KeyedLocks)
SHELF = web.AppKey("shelf", Shelf)
