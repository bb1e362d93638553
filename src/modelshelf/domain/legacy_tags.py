"""Stage 1's tags: each legacy tag keeps its id (a name already present keeps the id it has
here), and is logged with the tag it became, so that a later run of the same library takes
that tag again, renamed or merged here since, and makes no tag deleted here again."""

from __future__ import annotations

from typing import Any

from modelshelf.domain.legacy_report import MigrationReport
from modelshelf.domain.legacy_values import as_text
from modelshelf.errors import PartRefused
from modelshelf.storage import legacy_log, tags
from modelshelf.storage.change import Change


async def migrate_tags(
    change: Change, library_id: int, legacy_tags: list[tuple[int, Any]], report: MigrationReport
) -> dict[int, int]:
    """Bring in the tags of library `library_id`; returns legacy tag id -> tag id."""
    logged = await legacy_log.logged_tags(change.tx, library_id)
    mapping: dict[int, int] = {}
    for legacy_id, raw_name in legacy_tags:
        became = logged.get(legacy_id)
        if became is not None:  # brought in before: the tag it became, renamed or merged since
            mapping[legacy_id] = became
            report.count("tags_reused")
            continue
        name = _usable_name(legacy_id, raw_name, report)
        if name is None:
            continue
        # Brought in before and deleted here since: not made again (a tag of its name made
        # here since is taken).
        make = legacy_id not in logged
        try:
            async with change.part():
                tag_id = await _migrate_tag(change, legacy_id, name, report, make=make)
                if tag_id is not None:
                    mapping[legacy_id] = tag_id
                    await legacy_log.log_tag(change.tx, library_id, legacy_id, tag_id)
        except PartRefused as exc:
            report.problem(None, f"tag {legacy_id} not migrated: {exc.detail}")
    return mapping


def _usable_name(legacy_id: int, raw_name: Any, report: MigrationReport) -> str | None:
    notes: list[str] = []
    name = as_text(raw_name, "name", notes)
    for note in notes:
        report.problem(None, f"tag {legacy_id}: {note}")
    if name is None or not name.strip():
        report.problem(None, f"tag {legacy_id} has no usable name; not migrated")
        return None
    return name


async def _migrate_tag(
    change: Change, legacy_id: int, name: str, report: MigrationReport, *, make: bool
) -> int | None:
    found = await tags.tag_id_by_name(change.tx, name)
    if found is not None:
        report.count("tags_reused")
        return found
    if not make:
        return None
    id_taken = await tags.tag_id_taken(change.tx, legacy_id)
    tag_id = await tags.insert_tag(change.tx, name, None if id_taken else legacy_id)
    report.count("tags_created")
    return tag_id
