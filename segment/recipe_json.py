"""Training recipes (dataclasses) back from the JSON a checkpoint stores them in."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

Recipe = TypeVar("Recipe")


def recipe_from_json(cls: type[Recipe], data: dict[str, Any]) -> Recipe:
    """`cls(**data)` with JSON lists turned back into tuples for tuple fields; ValueError naming unknown keys."""
    types = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}")
    values = {k: tuple(v) if isinstance(v, list) and types[k].startswith("tuple") else v for k, v in data.items()}
    return cls(**values)
