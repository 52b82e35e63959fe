"""Confinement to the data root: names from requests are checked, joined and resolved inside the root or refused."""

from __future__ import annotations

import os
import re
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # one folder name: no separators, no leading dot


class PathRefusedError(ValueError):
    """A request named a path that is malformed or leads outside the data root."""


def check_name(value: str, what: str) -> str:
    """`value` if it is a plain folder name (letters, digits, '_', '.', '-'; no leading dot), else PathRefusedError."""
    if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
        raise PathRefusedError(f"bad {what} {value!r}: use a plain name of letters, digits, '_', '.' and '-'")
    return value


def confined(root: Path, *names: str) -> Path:
    """root/names..., resolved (symlinks followed), refused unless it stays inside the resolved root."""
    base = Path(root).resolve()
    path = base.joinpath(*names).resolve()
    if path != base and base not in path.parents:
        raise PathRefusedError(f"{'/'.join(names)!r} leads outside the data root")
    return path


def confined_relative(root: Path, relative: str, what: str) -> Path:
    """A relative path of plain names ('reco_plus/demo') confined to the root; absolute or dotted paths refused."""
    parts = relative.replace("\\", "/").split("/") if isinstance(relative, str) else []
    if not relative or relative.startswith("/") or not parts:
        raise PathRefusedError(f"bad {what} {relative!r}: give a path relative to the data root")
    return confined(root, *(check_name(part, what) for part in parts))


def inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks followed, is the root or lies under it."""
    base, resolved = Path(root).resolve(), Path(path).resolve()
    return resolved == base or base in resolved.parents


def check_files(root: Path, folder: Path, *files: str) -> Path:
    """`folder` if each of its `files` that exists resolves inside the root (no symlink out); else PathRefusedError."""
    for name in files:
        if (folder / name).exists() and not inside(root, folder / name):
            raise PathRefusedError(f"{name} of {folder.name!r} leads outside the data root")
    return folder


def check_tree(root: Path, folder: Path) -> Path:
    """`folder` if every file and folder under it resolves inside the root (no symlink out); else PathRefusedError."""
    for parent, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            if not inside(root, Path(parent) / name):
                relative = (Path(parent) / name).relative_to(folder).as_posix()
                raise PathRefusedError(f"{relative} of {folder.name!r} leads outside the data root")
    return folder
