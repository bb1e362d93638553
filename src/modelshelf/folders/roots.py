"""The model roots: folders by model type, from the `model_roots` setting and from a ComfyUI
`extra_model_paths.yaml`, checked at start-up, and which root's type a file takes."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Keys of an extra_model_paths.yaml section that name no model folder.
NOT_ROOTS = frozenset({"base_path", "is_default", "configs", "custom_nodes", "download_model_base"})


class RootsError(Exception):
    """A file that lists model roots cannot be read or does not say what it should."""


@dataclass(frozen=True, slots=True)
class Root:
    """A folder whose files (at any depth) are models of `type`. `path` is absolute."""

    path: Path
    type: str


@dataclass(frozen=True, slots=True)
class ModelRoots:
    """The roots in the order they were listed (duplicates removed) and what is wrong with them.

    A folder may appear under two types; the type listed first wins for it.
    """

    roots: tuple[Root, ...]
    notes: tuple[str, ...] = ()  # what is wrong besides roots that are not folders
    missing: tuple[tuple[Root, str], ...] = ()  # roots that are not folders, and why
    # Missing roots whose folder above does not exist either: that folder, the highest gone.
    gone_above: tuple[tuple[Root, Path], ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything wrong with these roots, as sentences. Roots under one folder that does
        not exist are one sentence, said where the first of them is: ComfyUI's example
        `extra_model_paths.yaml`, used as it comes, names ten folders under a `base_path`
        that is not there, and each scan said so ten times."""
        above = dict(self.gone_above)
        under: dict[Path, list[Root]] = {}
        for root, _why in self.missing:
            if root in above:
                under.setdefault(above[root], []).append(root)
        said = list(self.notes)
        for root, why in self.missing:
            group = under.get(above[root], []) if root in above else []
            if len(group) < 2:
                said.append(why)
            elif group[0] == root:
                said.append(_gone_folder(above[root], group))
        return tuple(said)

    @property
    def types(self) -> list[str]:
        """The types that have at least one root, in the order listed."""
        return list(dict.fromkeys(root.type for root in self.roots))

    def only(self, types: Iterable[str]) -> ModelRoots:
        """The roots of these types (for a scan limited to some types), warned about only
        for theirs."""
        wanted = set(types)
        return ModelRoots(
            tuple(r for r in self.roots if r.type in wanted),
            self.notes,
            tuple((root, why) for root, why in self.missing if root.type in wanted),
            tuple((root, gone) for root, gone in self.gone_above if root.type in wanted),
        )

    def type_of(self, path: Path) -> str | None:
        """The type of a file at `path`: that of the deepest root holding it, ties going to
        the type listed first; None if no root holds it.

        Compares paths as written (no symlinks resolved), as a watcher reports them; a walk
        decides by folder identity instead and agrees wherever no symlink is involved.
        """
        holding = [r for r in self.roots if path != r.path and path.is_relative_to(r.path)]
        # max() keeps the first of equals: ties go to the root listed first.
        return max(holding, key=lambda r: len(r.path.parts)).type if holding else None

    def reached_through_link(self, path: Path) -> bool:
        """Whether the folder holding `path` is reached from its root through a symlinked
        folder that leads into a root: a walk of every root finds what is there by its real
        path, never by this one. Blocking (resolves symlinks)."""
        folder = path.parent
        for root in self.roots:
            if folder == root.path or not folder.is_relative_to(root.path):
                continue
            real = Path(os.path.realpath(folder))
            if real == Path(os.path.realpath(root.path)) / folder.relative_to(root.path):
                continue  # no symlink on the way down from this root
            return any(real.is_relative_to(os.path.realpath(r.path)) for r in self.roots)
        return False

    def resolved(self) -> list[Path]:
        """The roots' folders, links resolved, in the order listed (for `walked_path`).
        Blocking."""
        return [Path(os.path.realpath(root.path)) for root in self.roots]

    def walked_type(self, path: Path, resolved: Sequence[Path] | None = None) -> str | None:
        """The type a walk of every root gives the file at `path`: that of the deepest root
        whose folder, links resolved, holds the folder of `path` (ties going to the root
        listed first), as the walk knows folders by identity; None if no root holds it so.
        `resolved` as for `walked_path`. Blocking (resolves symlinks)."""
        real = Path(os.path.realpath(path.parent))
        holding = [
            (root, at)
            for root, at in zip(self.roots, resolved or self.resolved(), strict=True)
            if real.is_relative_to(at)
        ]
        # max() keeps the first of equals: ties go to the root listed first.
        return max(holding, key=lambda held: len(held[1].parts))[0].type if holding else None

    def walked_path(self, path: Path, resolved: Sequence[Path] | None = None) -> Path:
        """`path` as a walk of every root finds it, whatever path a watcher reported it by
        (inotify reports every change in a folder by one of the paths to it, often a link's).
        A walk goes through the roots in the order listed, each down its real folders before
        any symlinked one, and walks a folder once: the folder holding `path` is found under
        the first root listed whose folder, links resolved, holds it (not inside a hidden
        folder), by that root's path, be it reached through a link into a root or through a
        root that is itself a link to another. A folder no root holds so (reached only
        through a link out of every root) keeps `path`. `resolved`: `self.resolved()`, when
        many paths are looked at. Blocking (resolves symlinks)."""
        real = Path(os.path.realpath(path.parent))
        for root, at in zip(self.roots, resolved or self.resolved(), strict=True):
            if real.is_relative_to(at):
                below = real.relative_to(at)
                if not any(part.startswith(".") for part in below.parts):
                    return root.path / below / path.name
        return path


def gather_roots(
    model_roots: Mapping[str, Sequence[Path]], comfyui_model_paths: Path | None
) -> ModelRoots:
    """The roots of both settings: `model_roots` first, then the YAML's sections in order.

    A root that does not exist or is not a folder is kept (it may be mounted later) and
    warned about. Raises RootsError if the YAML file is unreadable or malformed.
    """
    listed = [Root(absolute(path), kind) for kind, paths in model_roots.items() for path in paths]
    warnings: list[str] = []
    if comfyui_model_paths is not None:
        if comfyui_model_paths.exists():
            listed.extend(read_comfyui_paths(comfyui_model_paths))
        else:
            warnings.append(f"ComfyUI model paths file {comfyui_model_paths} does not exist")
    roots = tuple(dict.fromkeys(listed))
    missing = tuple((root, _check_folder(root)) for root in roots if not root.path.is_dir())
    gone_above = tuple(
        (root, gone) for root, _why in missing if (gone := _highest_gone(root.path)) != root.path
    )
    return ModelRoots(roots, tuple(warnings), missing, gone_above)


def _check_folder(root: Root) -> str:
    what = "is not a folder" if root.path.exists() else "does not exist"
    return f"model root {root.path} ({root.type}) {what}"


def _highest_gone(path: Path) -> Path:
    """The highest folder on the way down to `path` that does not exist (`path` itself when
    its parent exists, or when `path` exists)."""
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def _gone_folder(folder: Path, roots: Sequence[Root]) -> str:
    types = ", ".join(dict.fromkeys(root.type for root in roots))
    return f"folder {folder} does not exist, nor the {len(roots)} model roots under it ({types})"


def read_comfyui_paths(yaml_path: Path) -> list[Root]:
    """The roots named by a ComfyUI `extra_model_paths.yaml`, in file order.

    Like ComfyUI: each section's `base_path` (with `~` and `$VARS` expanded) is relative to
    the file's folder unless absolute; each type key holds one folder or several (one a line),
    relative to `base_path` (or to the file's folder) unless absolute. Keys in NOT_ROOTS are
    skipped and so are empty sections. Raises RootsError naming the file and what is wrong.
    """
    try:
        text = yaml_path.read_text(encoding="utf-8-sig")
        document = yaml.safe_load(text)
    except OSError as exc:
        raise RootsError(f"cannot read {yaml_path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RootsError(f"{yaml_path} is not UTF-8 text: {exc.reason}") from exc
    except yaml.YAMLError as exc:
        raise RootsError(f"{yaml_path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if document is None:
        return []
    if not isinstance(document, dict):
        raise RootsError(f"{yaml_path} must be a mapping of sections, not {_kind(document)}")
    folder = absolute(yaml_path).parent
    roots: list[Root] = []
    for name, section in document.items():
        roots.extend(_section_roots(yaml_path, folder, str(name), section))
    return roots


def _section_roots(yaml_path: Path, folder: Path, name: str, section: Any) -> list[Root]:
    if section is None:
        return []
    if not isinstance(section, dict):
        raise RootsError(f"{yaml_path}: section {name!r} must be a mapping, not {_kind(section)}")
    base = folder
    if section.get("base_path") is not None:
        raw = section["base_path"]
        if not isinstance(raw, str):
            raise RootsError(f"{yaml_path}: {name}.base_path must be a string")
        base = folder / os.path.expandvars(os.path.expanduser(raw.strip()))
    roots: list[Root] = []
    for key, value in section.items():
        if str(key) in NOT_ROOTS or value is None:
            continue
        if not isinstance(value, str | list):
            raise RootsError(
                f"{yaml_path}: {name}.{key} must be a folder or folders, not {_kind(value)}"
            )
        roots.extend(Root(absolute(base / line), str(key)) for line in _folders(value))
    return roots


def _folders(value: str | list[Any]) -> list[str]:
    """One folder per non-blank line of a string; a YAML list of strings is taken too."""
    lines = value.splitlines() if isinstance(value, str) else value
    return [str(line).strip() for line in lines if str(line).strip()]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _kind(value: Any) -> str:
    names: dict[type, str] = {list: "a list", str: "a string", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def absolute(path: Path) -> Path:
    """`path` with `~` expanded, made absolute against the working directory, `..` removed.

    Symlinks are kept: a root is known by the path the person wrote.
    """
    return Path(os.path.abspath(path.expanduser()))
