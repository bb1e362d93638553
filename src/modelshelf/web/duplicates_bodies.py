"""Bodies of the duplicates endpoint."""

from __future__ import annotations

from pydantic import BaseModel, Field

from modelshelf.records import SHA256_PATTERN


class DuplicateGroupBody(BaseModel):
    sha256: str = Field(pattern=SHA256_PATTERN.pattern)
    name: str | None
    size_bytes: int
    files: list[str] = Field(description="present paths holding this content, by path")
    wasted_bytes: int = Field(description="bytes taken by every copy but one")


class DuplicatesResponse(BaseModel):
    groups: list[DuplicateGroupBody]
    wasted_bytes: int = Field(description="the sum over all groups")
