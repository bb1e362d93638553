"""Persistence: the SQLite database (schema, migrations, queries) of a data directory."""

from modelshelf.storage.database import Storage
from modelshelf.storage.dirlock import DataDirInUse

__all__ = ["DataDirInUse", "Storage"]
