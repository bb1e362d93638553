"""Persistence: the SQLite database (schema, migrations, queries) of a data directory."""

from modelshelf.storage.database import DataDirInUse, Storage

__all__ = ["DataDirInUse", "Storage"]
