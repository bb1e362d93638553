"""Scanning the model roots: every model file becomes a location of the model of its content.

A scan runs in four phases (see scan_report for what it tells while it runs):
1. walking: the roots are listed (stat only) a batch at a time. A known location with the
   same size, mtime, inode and device is unchanged: nothing of it is read. Any other file
   is recognised without reading when its (device, inode, size, mtime) is that of a known
   location (renamed or moved inside the roots) or its digest is in the hash cache; the
   rest is to be hashed.
2. hashing: many files at once, as many as the CPU pool has threads, largest first; each
   file found is registered (`locations.register`) as soon as its content is known, except
   that files of one size wait for their turn in walk order: of copies of one content, the
   one walked first makes the model, however the hashing went. A file whose size another
   file handed out after it has waits until the last of them has had its turn, and the
   copies of a content are registered together (scan_turns.HeldCopies): a new model's facts
   are read once, from all of them.
3. checking: locations not seen by this scan whose file is gone are marked missing; a
   model's `path` moves off a location that is gone.
4. reading metadata: models whose files' facts may have changed have them read again.

`scan_run.ScanRun` carries a run through them. Every change is one change through the unit
of work, so a scan can be cancelled at any await and leaves a consistent library; running it
again costs little, since files hashed before are in the hash cache and files registered
before are unchanged locations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import aiosqlite

from modelshelf.domain.scan_report import NoProgress, ScanProgress, ScanResult
from modelshelf.domain.scan_run import ScanRun
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput, NotFound, Unprocessable
from modelshelf.folders.changed import look_at
from modelshelf.folders.roots import ModelRoots, RootsError, gather_roots
from modelshelf.folders.walk import Walk
from modelshelf.storage import model_files

log = logging.getLogger(__name__)
# Said to a newcomer whose first scan finds nothing: where the folders are named.
NO_ROOTS = (
    "no model roots are configured: name your model folders in model_roots (e.g. in"
    ' config/local.toml: [model_roots] loras = ["/path/to/ComfyUI/models/loras"]) or point'
    " comfyui_model_paths at ComfyUI's extra_model_paths.yaml, then restart the service"
    ' (README, "Model folders")'
)


async def scan_library(shelf: Shelf, types: list[str] | None, progress: ScanProgress) -> ScanResult:
    """Scan the model roots (only those of `types`, if given) and bring the library in step
    with them. Raises as `check_types`, Unprocessable if the roots cannot
    be read (a malformed extra_model_paths.yaml), and StorageFull, StorageUnavailable or
    StorageBusy from the database. Bad files are reported in the result, never raised."""
    roots = await model_roots(shelf)
    wanted = _wanted_types(roots, types)
    scan = ScanRun(shelf, progress, None if wanted is None else _in_types(roots, wanted))
    scanned = roots if wanted is None else roots.only(wanted)
    scan.result.warnings.extend(scanned.warnings)  # not those of roots it leaves alone
    if not roots.roots:
        scan.result.warnings.append(NO_ROOTS)
    try:
        if wanted is None:
            await scan.walk(Walk(roots))
        else:
            await scan.walk(Walk(scanned, as_walked_by=roots))
        await scan.hash_and_register()
    finally:
        await scan.close()

    async def unseen(conn: aiosqlite.Connection) -> list[tuple[str, str]]:
        return await model_files.unseen_locations(conn, scan.started, wanted)

    await scan.finish(unseen)
    log.info("scan done: %s", scan.result.as_json()["counts"])
    return scan.result


async def check_types(shelf: Shelf, types: list[str] | None) -> None:
    """What `scan_library` checks before it starts: raises InvalidInput for no type, NotFound
    for a type no root has, Unprocessable if the roots cannot be read."""
    _wanted_types(await model_roots(shelf), types)


async def scan_paths(
    shelf: Shelf, roots: ModelRoots, paths: Iterable[str], progress: ScanProgress | None = None
) -> ScanResult:
    """Apply what changed at `paths` under `roots` (a watcher's events), with the same rules
    as a whole scan: files there are registered, folders walked, paths gone marked missing."""
    scan = ScanRun(shelf, progress or NoProgress())
    changed = await shelf.run_files(look_at, roots, list(paths))
    for problem in changed.problems:
        scan.result.problem(problem)
    try:
        await scan.classify(changed.found)
        # Marked seen now, as a walk marks what it finds: classify leaves them for the walk
        # that follows it, and there may be none (a scan meanwhile must see they are here).
        await scan.flush_seen()
        for folder in changed.folders:
            walk = Walk(
                [folder],
                walked_elsewhere=[root.path for root in roots.roots],
                as_walked_by=roots,
                leave_other_types=False,
            )
            await scan.walk(walk)
        await scan.hash_and_register()
    finally:
        await scan.close()

    async def gone(conn: aiosqlite.Connection) -> list[tuple[str, str]]:
        found = []
        for path in changed.gone:
            found += await model_files.present_at_or_under(conn, path)
        return found

    await scan.finish(gone)
    return scan.result


async def model_roots(shelf: Shelf) -> ModelRoots:
    """The roots the settings name. Raises Unprocessable if the YAML file cannot be used."""
    settings = shelf.settings
    try:
        return await shelf.run_files(
            gather_roots, settings.model_roots, settings.comfyui_model_paths
        )
    except RootsError as exc:
        raise Unprocessable(f"the model roots cannot be read: {exc}") from exc


def _wanted_types(roots: ModelRoots, types: list[str] | None) -> list[str] | None:
    """`types` without repeats. Raises InvalidInput for an empty list, NotFound for a type
    no root has (as an unknown model is: the request is well formed, its target is not
    there)."""
    if types is None:
        return None
    if not types:
        raise InvalidInput("no type given; leave `types` out to scan every root")
    unknown = [t for t in types if t not in roots.types]
    if unknown:
        known = ", ".join(roots.types) or "none are configured"
        raise NotFound(
            f"no model root has type {', '.join(map(repr, unknown))}; "
            f"the types with roots are: {known}"
        )
    return list(dict.fromkeys(types))


def _in_types(roots: ModelRoots, wanted: list[str]) -> Callable[[str], bool]:
    """For a scan of some types: whether a path lies in a root it covers (a file's own, as
    `Walk(as_walked_by=...)` decides, where no link is involved)."""

    def covered(path: str) -> bool:
        return roots.type_of(Path(path)) in wanted

    return covered
