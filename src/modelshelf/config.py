"""Settings: built-in defaults < config/*.toml < MODELSHELF_* environment < command-line flags."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelshelf.storage.database import DATABASE_NAME

ENV_PREFIX = "MODELSHELF_"
# Variables of the prefix that are no setting: the folder of the TOML files, the test hooks
# of modelshelf.crashpoints, and the tests' own (the browser the web UI's tests drive, the
# examples a property test tries), which a developer exports in the shell that also serves
# the library: warned of there, they hid the warning about a real typo among noise.
OTHER_VARIABLES = frozenset(
    ENV_PREFIX + name
    for name in (
        "CONFIG_DIR",
        "CRASH_AT",
        "PAUSE_AT",
        "CRASHPOINT_LOG",
        "CHROMIUM",
        "PROPERTY_EXAMPLES",
    )
)


class SettingsError(Exception):
    """A configuration file or variable holds something unusable."""


class Settings(BaseModel):
    """Everything the service can be told at start-up. Paths are resolved by `resolve_paths`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("./data")
    # Not empty: aiohttp would take "" to mean every interface.
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=0, le=65535)
    legacy_root: Path | None = None
    models_root: Path | None = None
    log_level: str = "INFO"
    # Threads for hashing and rendering (CPU-bound); short file work has a pool of its own.
    workers: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1, le=64)
    # Nice steps the hashing and rendering threads run below the serving threads (Linux) when
    # bulk_idle is off or refused, so reads stay quick while bulk work takes every core; 0
    # runs them at the same priority.
    bulk_nice: int = Field(default=10, ge=0, le=19)
    # Run those threads under SCHED_IDLE (Linux): a core only when nothing else wants it;
    # where that is refused, bulk_nice applies.
    bulk_idle: bool = True
    # Connections for reads (bulk work has two more of its own); one client holds at most
    # half of them at once, so the next client's read finds one free.
    read_connections: int = Field(default=4, ge=1, le=32)
    # Listings whose total and, for a search, the order of its best matches are kept while
    # the library does not change, so paging through one search counts and ranks once; 0 keeps
    # none.
    kept_totals: int = Field(default=256, ge=0, le=100_000)
    max_image_pixels: int = Field(default=100_000_000, ge=1)
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    client_max_size: int = Field(default=1024 * 1024, ge=1024)
    # Longest time a request body may take to arrive (a client trickling it in is cut off).
    body_timeout: float = Field(default=120.0, gt=0)
    trusted_proxies: list[str] = Field(default_factory=list)
    # Origins (scheme://host[:port]) whose browser pages may call the API; "*" for any origin
    # (never with credentials). Empty: no CORS headers at all.
    cors_origins: list[str] = Field(default_factory=list)
    # Names (besides IP addresses and localhost) the Host header may give this service; "*"
    # for any. Empty: any name unless bound to loopback with no trusted_proxies (web/hosts).
    allowed_hosts: list[str] = Field(default_factory=list)
    path_prefix: str = ""
    shutdown_timeout: float = Field(default=30.0, ge=0)
    # Model folders by type, e.g. {"loras": [Path("/models/loras")]}; see parse_model_roots.
    model_roots: dict[str, list[Path]] = Field(default_factory=dict)
    # A ComfyUI extra_model_paths.yaml whose sections name more model folders.
    comfyui_model_paths: Path | None = None
    # Apply changes under the model roots while serving.
    watch: bool = False
    # A model file a scan finds written less than this long ago is looked at again after it,
    # and taken only if it has not changed (a download still under way is not a model).
    scan_settle_seconds: float = Field(default=2.0, ge=0, le=600)
    # Memory for renditions served lately, in MiB (0: every image is read from disk).
    image_cache_mb: int = Field(default=64, ge=0, le=1_048_576)
    # The event loop `serve` runs on: uvloop's (libuv) where it is installed, asyncio's own
    # otherwise or when asked for (to rule the loop out when chasing a problem).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("model_roots", mode="before")
    @classmethod
    def _roots_parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = parse_model_roots(value)
        if not isinstance(value, dict):
            return value
        roots: dict[str, Any] = {}
        for kind, folders in value.items():
            if not str(kind).strip():
                raise ValueError("a model type name must not be empty")
            # One folder may be written without the brackets of a list.
            roots[str(kind).strip()] = [folders] if isinstance(folders, str) else folders
        return roots

    @field_validator("cors_origins")
    @classmethod
    def _origins_parse(cls, value: list[str]) -> list[str]:
        return [_origin(item) for item in value]

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_are_names(cls, value: list[str]) -> list[str]:
        names = [item.strip().lower().rstrip(".") for item in value]
        for name in names:
            if not name or any(c in name for c in "/:@ "):
                raise ValueError(f"{name!r} is not a host name such as nas.local, or *")
        return names

    @field_validator("log_level")
    @classmethod
    def _level_is_known(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("path_prefix")
    @classmethod
    def _prefix_is_a_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError("path_prefix must start with '/'")
        return value

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_NAME

    @property
    def effective_legacy_root(self) -> Path:
        return self.legacy_root if self.legacy_root is not None else self.data_dir / "legacy"

    def resolve_paths(self) -> Settings:
        """Return a copy whose directories are absolute, so later `chdir`s cannot move them."""
        updates: dict[str, Any] = {"data_dir": self.data_dir.expanduser().resolve()}
        for name in ("legacy_root", "models_root"):
            value = getattr(self, name)
            if value is not None:
                updates[name] = value.expanduser().resolve()
        # Model folders keep the symlinks they were written with: a person knows them so.
        updates["model_roots"] = {
            kind: [_absolute(folder) for folder in folders]
            for kind, folders in self.model_roots.items()
        }
        if self.comfyui_model_paths is not None:
            updates["comfyui_model_paths"] = _absolute(self.comfyui_model_paths)
        return self.model_copy(update=updates)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path.expanduser()))


def parse_model_roots(text: str) -> dict[str, list[str]]:
    """`MODELSHELF_MODEL_ROOTS`: `type=folder,folder;type=folder`, or a JSON object of lists
    (for folder names holding `,` or `;`). Raises ValueError if it is neither."""
    text = text.strip()
    if text.startswith("{"):
        value: dict[str, list[str]] = json.loads(text)  # `{` opens an object or an error
        return value
    roots: dict[str, list[str]] = {}
    for part in filter(str.strip, text.split(";")):
        kind, equals, folders = part.partition("=")
        if not equals or not kind.strip():
            raise ValueError(f"expected type=folder[,folder...], got {part.strip()!r}")
        roots.setdefault(kind.strip(), []).extend(
            f.strip() for f in folders.split(",") if f.strip()
        )
    return roots


def _origin(value: str) -> str:
    """An origin as browsers send it (scheme://host[:port], lower case), or "*"."""
    value = value.strip()
    if value == "*":
        return value
    parts = urlsplit(value.rstrip("/"))
    if not (parts.scheme and parts.netloc) or parts.path or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not an origin such as https://example.org:8443 or *")
    return f"{parts.scheme}://{parts.netloc}".lower()


def load_settings(
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    config_dir: Path | None = None,
) -> Settings:
    """Merge the sources in order of precedence and validate them.

    Raises SettingsError naming the source and field at fault.
    """
    environ = dict(os.environ) if environ is None else environ
    if config_dir is None:
        chosen = environ.get(ENV_PREFIX + "CONFIG_DIR", "")
        # An empty path is no path (not the working directory), as for every path variable.
        config_dir = Path(chosen if chosen.strip() else "config")
    # Each layer: its values, and where each came from (for error messages).
    layers: list[tuple[dict[str, Any], dict[str, str]]] = []
    for file in config_files(config_dir):
        values = _read_toml(file)
        layers.append((values, dict.fromkeys(values, str(file))))
    values = _read_environment(environ)
    layers.append((values, {name: ENV_PREFIX + name.upper() for name in values}))
    values = {k: v for k, v in (flags or {}).items() if v is not None}
    layers.append((values, {name: "--" + name.replace("_", "-") for name in values}))
    merged = {name: value for values, _ in layers for name, value in values.items()}
    origin = {name: source for _, sources in layers for name, source in sources.items()}
    try:
        return Settings.model_validate(merged).resolve_paths()
    except ValidationError as exc:
        problems = "; ".join(_problem(e, origin) for e in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


def config_files(config_dir: Path) -> list[Path]:
    """The TOML files of `config_dir` in the order they are read: `default.toml` first (it
    sets every key, so a file read before it would be overridden), then the others by name."""
    if not config_dir.is_dir():
        return []
    return sorted(config_dir.glob("*.toml"), key=lambda f: (f.name != "default.toml", f.name))


def _problem(error: Any, origin: dict[str, str]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    source = origin.get(str(error["loc"][0])) if error["loc"] else None
    return (
        f"{location} (from {source}): {error['msg']}" if source else f"{location}: {error['msg']}"
    )


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read {file}: {exc}") from exc
    # A [modelshelf] table is accepted so the file can share a document with other tools.
    section = data.get("modelshelf", data)
    if not isinstance(section, dict):
        raise SettingsError(f"{file}: [modelshelf] must be a table")
    return section


def _read_environment(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if not raw.strip() and not field.is_required() and field.default is None:
            values[name] = None  # an empty variable unsets an optional path
        elif not raw.strip() and field.annotation is Path:
            continue  # an empty path is no path (not the working directory): the rest decide
        elif field.annotation == list[str]:
            values[name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            values[name] = raw
    return values


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """A sentence for each MODELSHELF_* variable that names no setting (a typo, or one left
    from another version), with the names it may have meant."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    sentences = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            meant = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {meant[0]}?)" if meant else ""
            sentences.append(f"environment variable {name} names no setting: ignored{hint}")
    return sentences
