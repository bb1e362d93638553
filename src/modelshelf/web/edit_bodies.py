"""Request and response bodies of editing the library: model fields and tags, tags themselves,
the order of images, history and the import preview."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, JsonValue, StrictStr

from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.domain.edits import ModelPatch
from modelshelf.domain.strategies import actions_taken
from modelshelf.domain.tagging import MAX_TAG_NAME
from modelshelf.records import SHA256_ANY_CASE, ModelRecord, PendingRecord, Tag
from modelshelf.web.bodies import (
    IMAGE_NAME_PATTERN,
    VISIBLE_TEXT,
    Body,
    Query,
    RowId,
    Sha256,
)

MAX_TAGS = 500
MAX_IMAGES = 10_000


def _at_most_once_trimmed(limit: int, what: str) -> Callable[[str], str]:
    """A validator refusing a text over `limit` characters once trimmed, as it is used: the
    longest one pasted with a space after it is that text. It raises ValueError."""

    def check(text: str) -> str:
        if len(text.strip()) > limit:
            raise ValueError(f"{what} has at most {limit} characters, once trimmed")
        return text

    return check


# No maxLength: JSON Schema cannot say "once trimmed" simply; the description says it.
TagName = Annotated[
    StrictStr,
    Field(
        min_length=1,
        pattern=VISIBLE_TEXT,
        description=(
            f"trimmed and lower-cased before use; at most {MAX_TAG_NAME} characters once trimmed"
        ),
    ),
    AfterValidator(_at_most_once_trimmed(MAX_TAG_NAME, "a tag name")),
]


def _finite_numbers(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Refuses NaN and infinities anywhere in `value` (the parser reads `NaN`, `Infinity` and
    `1e400` as such): JSON has no such numbers, and meta_json is JSON. Raises ValueError."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError("NaN and Infinity are not JSON numbers; send a finite number") from None
    return value


# A JSON object whose numbers are finite.
JsonObject = Annotated[dict[str, JsonValue], AfterValidator(_finite_numbers)]


# The longest name and type PATCH takes (the web UI's editor holds its fields to them).
MAX_MODEL_NAME = 1000
MAX_MODEL_TYPE = 100
# A model's name and type as PATCH sets them: trimmed (a ` lora ` would be a type of its own
# in the filter); null clears one, a blank one is refused. No maxLength, as for TagName: the
# limit is on the trimmed text, which the fields' descriptions say (NAME_SAYS, TYPE_SAYS).
ModelName = Annotated[
    StrictStr,
    Field(pattern=VISIBLE_TEXT),
    AfterValidator(_at_most_once_trimmed(MAX_MODEL_NAME, "a name")),
    AfterValidator(str.strip),
]
ModelType = Annotated[
    StrictStr,
    Field(pattern=VISIBLE_TEXT),
    AfterValidator(_at_most_once_trimmed(MAX_MODEL_TYPE, "a type")),
    AfterValidator(str.strip),
]
NAME_SAYS = f"trimmed; at most {MAX_MODEL_NAME} characters once trimmed; null clears it"
TYPE_SAYS = f"trimmed; at most {MAX_MODEL_TYPE} characters once trimmed; null clears it"


class _FieldsPatch(Body):
    """A body that patches model fields: the columns it gives (a value or null) and meta_json,
    a JSON merge patch, if given."""

    def to_patch(self) -> ModelPatch:
        given, values = self.model_fields_set, dict(self)
        columns: dict[str, str | None] = {c: values[c] for c in ("name", "type") if c in given}
        return ModelPatch(columns, values["meta_json"] if "meta_json" in given else None)


class ModelPatchRequest(_FieldsPatch):
    """Any of name, type and meta_json; meta_json is a JSON merge patch (RFC 7396): its keys
    replace the model's, null removes a key, objects merge recursively."""

    name: ModelName | None = Field(default=None, description=NAME_SAYS)
    type: ModelType | None = Field(default=None, description=TYPE_SAYS)
    meta_json: JsonObject = Field(default_factory=dict)


class ModelTagsRequest(Body):
    tags: list[TagName] = Field(
        max_length=MAX_TAGS,
        description=f"the names, each at most {MAX_TAG_NAME} characters once trimmed",
    )


class ModelsTagsRequest(Body):
    hashes: list[Sha256] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f"the models to tag, 1 to {MAX_MODELS} (a repeat counts once)",
    )
    add: list[TagName] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=f"new names become tags; each at most {MAX_TAG_NAME} characters once trimmed",
    )
    remove: list[TagName] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description=(
            f"names that are no tag are ignored; each at most {MAX_TAG_NAME} characters once"
            " trimmed"
        ),
    )


class ModelsChangedResponse(BaseModel):
    """The answer of a change of many models (their tags, or their fields): each model asked
    for once, in the order asked (hashes in lower case)."""

    changed: list[str] = Field(description="models the request changed, each saved in history")
    unchanged: list[str] = Field(description="models that were so already")
    not_found: list[str] = Field(description="hashes no model has")


class ModelsDeleteRequest(Body):
    hashes: list[Sha256] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f"the models to delete, 1 to {MAX_MODELS} (a repeat counts once)",
    )


class ModelsRestoreRequest(Body):
    hashes: list[Sha256] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f"the deleted models to restore, 1 to {MAX_MODELS} (a repeat counts once)",
    )


class ModelsEditRequest(_FieldsPatch):
    """type, meta_json or both (neither is refused), applied to every model as PATCH applies
    them; meta_json is a JSON merge patch (RFC 7396): its keys replace each model's, null
    removes a key. No name: models do not share one."""

    hashes: list[Sha256] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description=f"the models to edit, 1 to {MAX_MODELS} (a repeat counts once)",
    )
    type: ModelType | None = Field(default=None, description=TYPE_SAYS)
    meta_json: JsonObject = Field(default_factory=dict)


class TagRequest(Body):
    name: TagName


class MergeTagRequest(Body):
    into: RowId = Field(description="the id of the tag that stays (not the merged tag's own)")


class MergeTagResponse(BaseModel):
    tag: Tag = Field(description="the tag that stays")
    models: int = Field(description="how many models carried the merged tag")


class ReorderRequest(Body):
    hash: StrictStr = Field(description="the model's SHA256", pattern=SHA256_ANY_CASE)
    order: list[Annotated[StrictStr, Field(pattern=IMAGE_NAME_PATTERN)]] = Field(
        max_length=MAX_IMAGES,
        description="every current image name, in the new order: order[i] becomes seq i",
    )


class HistoryEntryBody(BaseModel):
    id: int
    at: int = Field(description="when the change was made, ms since the epoch")
    action: str = Field(
        description="override, merge, edit, tags, reorder, delete, restore, tag_renamed,"
        " tag_merged or tag_deleted"
    )
    before: ModelRecord = Field(description="the model as it was before the change")


class HistoryResponse(BaseModel):
    entries: list[HistoryEntryBody]


class HistoryQuery(Query):
    """Both optional: without them the answer holds every entry. A page asks for `limit`
    entries, then for those `before` the last it has."""

    before: int | None = Field(
        default=None, ge=-(2**63), le=2**63 - 1, description="only entries older than this id"
    )
    limit: int | None = Field(default=None, ge=1, le=1000, description="at most this many")


class RestoredRecord(ModelRecord):
    note: str | None = Field(
        default=None, description="set when a deleted model came back (without its images)"
    )

    @classmethod
    def of(cls, record: ModelRecord, note: str | None) -> RestoredRecord:
        """`record` with `note`, its fields taken as they are: validated again, megabytes of
        meta_json (a kohya header's tag counts) took milliseconds on the event loop."""
        return cls.model_construct(**dict(record), note=note)


def _action_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = actions_taken()


class PreviewResponse(BaseModel):
    action_taken: Annotated[str, Field(json_schema_extra=_action_enum)]
    result: ModelRecord = Field(description="the model as the import would leave it")
    existing: ModelRecord | None
    pending: PendingRecord
