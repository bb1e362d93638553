"""Request and response bodies. Every JSON body the API reads or writes is one of these."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictStr,
    field_validator,
    model_validator,
)

from modelshelf.domain.strategies import Strategy, actions_taken
from modelshelf.domain.tagging import visible_text_pattern
from modelshelf.imagefolder import PUBLIC_NAME
from modelshelf.records import (
    ROW_ID_MAX,
    ROW_ID_MIN,
    SHA256_ANY_CASE,
    ModelRecord,
    PendingRecord,
    QueuedPending,
    Tag,
)
from modelshelf.renditions import DEFAULT_QUALITY, qualities
from modelshelf.storage.model_filter import Order, SortKey

MAX_BATCH = 10_000
NO_NUL = r"^[^\x00]*$"
VISIBLE_TEXT = visible_text_pattern()
IMAGE_NAME_PATTERN = f"^{PUBLIC_NAME.pattern}$"

# What each pattern a body field must match asks for, in words: a 400's detail says this,
# not the regex (the visible text's spells out every control and space character by its code).
PATTERN_MEANINGS = {
    NO_NUL: "must not contain a NUL character",
    SHA256_ANY_CASE: "should be a SHA256: 64 hex characters",
    VISIBLE_TEXT: "needs a character other than white space, and no control or invisible"
    " characters",
    IMAGE_NAME_PATTERN: "should be an image name: <sha256>_<seq>.webp or <sha256>.webp",
}


def _number_not_text(value: Any) -> Any:
    """JSON integers only: 260 and 260.0 are integers, "260" and true are not."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number, not a string or boolean")
    return value


# The id of a row (a tag, a pending model) in a body: any signed 64-bit JSON integer.
RowId = Annotated[int, Field(ge=ROW_ID_MIN, le=ROW_ID_MAX), BeforeValidator(_number_not_text)]
# A pending model id (pending models keep their legacy ids).
PendingId = RowId

# A model's SHA256 in a request body: 64 hex characters in either case, read in lower case.
Sha256 = Annotated[
    StrictStr,
    Field(pattern=SHA256_ANY_CASE, description="a model's SHA256: 64 hex characters"),
    AfterValidator(str.lower),
]


class Body(BaseModel):
    """Request bodies reject unknown fields: a misspelt option must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters: unknown ones are ignored (clients add `?rev=` or `?v=` to bust
    caches); known ones are validated."""

    model_config = ConfigDict(extra="ignore")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="the HTTP reason phrase")
    detail: str = Field(description="what was wrong, for a person")


class ConflictBody(ErrorBody):
    existing: ModelRecord | None
    pending: PendingRecord


class HealthBody(BaseModel):
    status: Literal["ok"] = "ok"


class MigrateLegacyRequest(Body):
    legacy_db_path: StrictStr = Field(min_length=1, max_length=4096, pattern=NO_NUL)
    legacy_images_dir: StrictStr = Field(min_length=1, max_length=4096, pattern=NO_NUL)


class MigrationProblem(BaseModel):
    legacy_id: int | None
    problem: str
    pending_id: int | None = Field(
        default=None, description="the id the row is pending as, when not its legacy id"
    )


class LegacyLibrary(BaseModel):
    fingerprint: str = Field(description="tells this legacy library from others")
    seen_before: bool = Field(description="whether stage 1 had read this library before")


class MigrationResponse(BaseModel):
    status: Literal["success"] = "success"
    db_migration: dict[str, int] = Field(
        description="legacy_models = models_imported + pending_created + already_migrated"
        " + rows_refused"
    )
    image_migration: dict[str, int]
    library: LegacyLibrary
    problems: list[MigrationProblem]
    problems_not_listed: int


class PendingModelsResponse(BaseModel):
    # QueuedPending first: a union serialises a value as the first type it is an instance
    # of, and a QueuedPending is a PendingRecord too.
    models: list[QueuedPending | PendingRecord]


class PendingQuery(Query):
    checks: bool = Field(
        False,
        description="also say of each record whether its model file is missing and whether it"
        " conflicts with a model (`missing`, `conflict`): a stat of every file, so it costs more",
    )


def _sent_once(data: Any, name: str, legacy: str) -> Any:
    """`data` without `legacy`, the name Hikaze Model Manager 2 clients send for `name`, when
    both are sent alike. Sent alone, `legacy` is read by the field's validation alias, so a
    400 names the key the client sent. Raises ValueError when the two disagree."""
    if isinstance(data, dict) and name in data and legacy in data:
        if data[name] != data[legacy]:
            raise ValueError(f"{name} and {legacy} disagree; send one of them")
        data = {key: value for key, value in data.items() if key != legacy}
    return data


def _one_strategy(data: Any) -> Any:
    return _sent_once(data, "conf_strategy", "conflict_strategy")


# A conflict strategy in a body, under either of its names.
StrategyAnyName = Annotated[
    Strategy | None,
    Field(
        validation_alias=AliasChoices("conf_strategy", "conflict_strategy"),
        description="also read as `conflict_strategy` (what Hikaze Model Manager 2 clients send)",
    ),
]


class ImportRequest(Body):
    id: PendingId
    conf_strategy: StrategyAnyName = None

    _strategy_alias = model_validator(mode="before")(_one_strategy)


class ImportResponse(BaseModel):
    status: Literal["success"] = "success"
    sha256: str
    action_taken: Annotated[
        str, Field(json_schema_extra=lambda schema: schema.update(enum=actions_taken()))
    ]


class BatchImportRequest(Body):
    ids: list[PendingId] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        validation_alias=AliasChoices("ids", "id"),
        description="also read as `id` (what Hikaze Model Manager 2 clients send)",
    )
    conf_strategy: StrategyAnyName = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _sent_once(_one_strategy(data), "ids", "id")


class DiscardRequest(Body):
    ids: list[PendingId] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"the pending models to discard, 1 to {MAX_BATCH} (a repeat counts once)",
    )


class DiscardResponse(BaseModel):
    """Each id asked for once, in the order asked."""

    discarded: list[int] = Field(description="taken out of the queue")
    locked: list[int] = Field(description="being imported meanwhile: left in the queue")
    not_found: list[int] = Field(description="ids no pending model has")


class BatchResult(BaseModel):
    id: int
    result: Literal["success", "conflict", "locked", "not_found", "failed"]
    sha256: str | None = None
    action_taken: str | None = None
    detail: str | None = None


class BatchImportResponse(BaseModel):
    results: list[BatchResult]
    counts: dict[str, int]


class SampleImagesRequest(Body):
    hash: StrictStr = Field(
        description="the model's SHA256: 64 hex characters", pattern=SHA256_ANY_CASE
    )


class SampleImages(RootModel[list[str]]):
    """Image names ordered by seq: ["<hash>_0.webp", "<hash>_1.webp", ...]."""


def _registered_quality(value: Any) -> Any:
    if value not in qualities():
        raise ValueError(f"must be one of {', '.join(qualities())}")
    return value


def _quality_enum(schema: dict[str, Any]) -> None:
    schema["enum"] = list(qualities())


# A quality of the rendition registry, checked (and described in OpenAPI) against the registry.
Quality = Annotated[
    StrictStr,
    AfterValidator(_registered_quality),
    Field(json_schema_extra=_quality_enum),
]


class ImageQuery(Query):
    quality: Quality = DEFAULT_QUALITY


class UploadResponse(BaseModel):
    status: Literal["success"] = "success"
    name: str


class DeleteImageResponse(BaseModel):
    status: Literal["success"] = "success"
    deleted: str


# 100 characters: even percent-encoded 4-byte characters in every field keep a valid request
# under aiohttp's 8190-byte request line. (The web UI's fields take no more.)
MAX_FILTER_TEXT = 100


class ModelsQuery(Query):
    type: str | None = Field(default=None, max_length=MAX_FILTER_TEXT)
    tag: str | None = Field(default=None, max_length=MAX_FILTER_TEXT)
    q: str | None = Field(
        default=None,
        max_length=MAX_FILTER_TEXT,
        description="words matched as prefixes over name, file names, description, trigger"
        " words and tags; best matches first unless `sort` is given (a model named as typed,"
        " then names beginning with it, then by bm25; when half of the library or more"
        " matches, the names holding the words, then the rest, by name). One word of 10 to 64 hex"
        " digits, in any case (AutoV2, a whole SHA256), also finds the model whose SHA256"
        " begins with it",
    )
    base_model: str | None = Field(default=None, max_length=MAX_FILTER_TEXT)
    missing: bool | None = Field(default=None, description="only models with no file present")
    sort: SortKey | None = Field(default=None, description="default: name, or relevance with q")
    order: Order = "asc"
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=2**62)
    meta_keys: str | None = Field(
        default=None,
        max_length=MAX_FILTER_TEXT,
        description="comma-separated keys of meta_json to answer, the others left out (a page"
        " of a library whose models carry their Civitai records shrinks from about 8 KB a model:"
        " a grid needs `base_model`); empty: none; absent: all of meta_json",
    )

    def meta_key_set(self) -> frozenset[str] | None:
        """The meta_json keys asked for, or None for all of them."""
        if self.meta_keys is None:
            return None
        return frozenset(k.strip() for k in self.meta_keys.split(",") if k.strip())

    @field_validator("type", "tag", "base_model")
    @classmethod
    def _empty_filters_nothing(cls, value: str | None) -> str | None:
        """`?tag=` is no tag filter, as `?q=` is no search: a page's form sends every field,
        filled or not, and no type, tag or base model the listings offer is empty."""
        return value or None

    @field_validator("tag")
    @classmethod
    def _tag_trimmed(cls, value: str | None) -> str | None:
        """A tag name is trimmed when saved, so the spaces around a typed one are no part of
        it. (Not folded as a new name is: stage 1 keeps the old manager's spellings, which
        the tag list offers as they are.)"""
        return value.strip() or None if value is not None else None


class ModelsPage(BaseModel):
    models: list[ModelRecord]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, models: list[ModelRecord], total: int, query: ModelsQuery) -> ModelsPage:
        """The page of `models`, each meta_json cut to the keys `query` asks for."""
        keys = query.meta_key_set()
        if keys is not None:
            models = [
                m.model_copy(
                    update={"meta_json": {k: v for k, v in m.meta_json.items() if k in keys}}
                )
                for m in models
            ]
        return cls(models=models, total=total, limit=query.limit, offset=query.offset)

    @classmethod
    def json_of(cls, jsons: list[bytes], total: int, query: ModelsQuery) -> bytes:
        """The JSON of the page of the records whose JSON is `jsons` (each as ModelRecord
        serialises it), as model_dump_json writes it: a page's records are not serialised
        again (storage.record_texts keeps them serialised)."""
        empty = cls(models=[], total=total, limit=query.limit, offset=query.offset)
        rest = empty.model_dump_json().encode().removeprefix(_NO_MODELS)
        return b'{"models":[' + b",".join(jsons) + b"]" + rest


_NO_MODELS = b'{"models":[]'


class TagCount(Tag):
    models: int


class TagsResponse(BaseModel):
    tags: list[TagCount]


class TypesResponse(BaseModel):
    types: list[str]


class BaseModelCount(BaseModel):
    name: str = Field(description="a value the base_model filter of GET /api/models takes")
    count: int = Field(description="how many models that filter lists")


class BaseModelsResponse(BaseModel):
    base_models: list[BaseModelCount] = Field(
        description="most used first, then by name; one longer than the filter takes"
        f" ({MAX_FILTER_TEXT} characters) is not listed"
    )

    @classmethod
    def of(cls, found: list[tuple[str, int]]) -> BaseModelsResponse:
        """The base models `found` (name, count) that the base_model filter can take."""
        return cls(
            base_models=[
                BaseModelCount(name=name, count=count)
                for name, count in found
                if len(name) <= MAX_FILTER_TEXT
            ]
        )
