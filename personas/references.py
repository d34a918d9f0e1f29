"""References to library items (built-in ids, files, folders of files) resolved to loaded items.

The persona and the scenario libraries both resolve references this way, each with its own loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Protocol, TypeVar

from personas.files import FileError, FileErrors, load_all

__all__ = ["files_of", "load_packaged", "resolve_refs"]


class _Loaded(Protocol):
    @property
    def source(self) -> str: ...


LoadedT = TypeVar("LoadedT", bound=_Loaded)


def load_packaged(
    package: str, folder: str, load: Callable[[str, str], LoadedT], ident: Callable[[LoadedT], str]
) -> dict[str, LoadedT]:
    """Every ``.yaml`` file of a package's folder, loaded with ``load(text, source)``, by ``ident``.

    Raises:
        FileErrors: the problems of every file at once.
    """
    found: dict[str, LoadedT] = {}
    errors: list[FileError] = []
    for entry in sorted(resources.files(package).joinpath(folder).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            loaded = load(entry.read_text(encoding="utf-8"), f"{package}/{folder}/{entry.name}")
        except FileErrors as exc:
            errors.extend(exc.errors)
            continue
        found[ident(loaded)] = loaded
    if errors:
        raise FileErrors(errors)
    return found


def files_of(ref: str) -> list[Path] | None:
    """The files a reference names: a folder's ``.yaml`` files, or a file; ``None`` for an id."""
    path = Path(ref)
    if path.is_dir():
        return sorted(path.glob("*.yaml"))
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        return [path]
    return None


def resolve_refs(
    refs: Iterable[str],
    kind: str,
    library: Callable[[], Mapping[str, LoadedT]],
    load_file: Callable[[Path], LoadedT],
    ident: Callable[[LoadedT], str],
    special: Callable[[str], LoadedT | None] = lambda ref: None,
) -> list[LoadedT]:
    """Built-in ids, files and folders of files as loaded items; no refs: the whole library.

    Args:
        refs: the references, in order.
        kind: what they name (``persona``), for messages.
        library: the built-in items by id.
        load_file: loads one file.
        ident: an item's id.
        special: resolves references of another form (``None``: not one of them).

    Raises:
        FileErrors: all problems in all files at once (an unknown id, an id given twice count as one each).
    """
    refs = list(refs)
    if not refs:
        return list(library().values())
    result: list[LoadedT] = []
    errors: list[FileError] = []
    for ref in refs:
        try:
            if (item := special(ref)) is not None:
                result.append(item)
            elif (paths := files_of(ref)) is not None:
                result += load_all(load_file, paths)
            elif ref in library():
                result.append(library()[ref])
            else:
                errors.append(FileError(ref, 1, 1, f"no built-in {kind} {ref!r}; see `convsim {kind}s list`"))
        except FileErrors as exc:
            errors.extend(exc.errors)
    seen: set[str] = set()
    for loaded in result:
        if ident(loaded) in seen:
            errors.append(FileError(loaded.source, 1, 1, f"{kind} id {ident(loaded)!r} given twice"))
        seen.add(ident(loaded))
    if errors:
        raise FileErrors(errors)
    return result
