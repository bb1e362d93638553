"""Typed keys for what the application holds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from modelshelf.config import Settings
from modelshelf.locks import KeyedLocks
from modelshelf.shelf import Shelf
from modelshelf.storage import Storage

SETTINGS = web.AppKey("settings", Settings)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
STORAGE = web.AppKey("storage", Storage)
PENDING_LOCKS = web.AppKey("pending_locks", KeyedLocks)
MODEL_LOCKS = web.AppKey("model_locks", KeyedLocks)
SHELF = web.AppKey("shelf", Shelf)
