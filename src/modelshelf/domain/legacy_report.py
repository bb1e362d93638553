"""The report of a stage-1 run: counts, the library it read, and the problems of single rows.

Every legacy row ends in exactly one of four counts, so they add up to `legacy_models`:
`models_imported`, `pending_created`, `already_migrated`, `rows_refused`. The other counts
say more about some of those rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_PROBLEMS_LISTED = 1000
ROW_OUTCOMES = ("models_imported", "pending_created", "already_migrated", "rows_refused")


@dataclass
class MigrationReport:
    db_migration: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "legacy_models",
                *ROW_OUTCOMES,
                "duplicates_to_pending",
                "pending_renumbered",
                "rows_with_problems",
                "tags_created",
                "tags_reused",
            ),
            0,
        )
    )
    image_migration: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "images_listed",
                "renditions_created",
                "pending_images_copied",
                "images_missing",
                "images_outside",
                "images_unreadable",
            ),
            0,
        )
    )
    # Which library this was: its fingerprint, and whether stage 1 had read it before.
    library: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    problems_not_listed: int = 0

    def problem(self, legacy_id: int | None, text: str, **extra: Any) -> None:
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append({"legacy_id": legacy_id, "problem": text, **extra})
        else:
            self.problems_not_listed += 1

    def count(self, key: str, amount: int = 1) -> None:
        if key in self.db_migration:
            self.db_migration[key] += amount
        else:
            self.image_migration[key] += amount
