"""The concept registry: a plain YAML file naming the concepts to archive, with their synonyms and prompts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.core.io import atomic_path


@dataclass(frozen=True)
class Concept:
    """One named concept: synonyms expanded by the prompt templates, prompts used as they are, a context flag."""

    name: str
    synonyms: tuple[str, ...] = field(default_factory=tuple)
    prompts: tuple[str, ...] = field(default_factory=tuple)
    context: bool = False  # ReCo's context concepts (e.g. sky, grass), co-segmented first

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a concept needs a non-empty name, got {self.name!r}")
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "synonyms", _strings(self.synonyms, "synonyms", self.name))
        object.__setattr__(self, "prompts", _strings(self.prompts, "prompts", self.name))
        if not isinstance(self.context, bool):
            raise ValueError(f"concept {self.name!r}: context must be true or false, got {self.context!r}")

    @property
    def slug(self) -> str:
        """The concept's folder name."""
        return slug(self.name)

    @property
    def terms(self) -> tuple[str, ...]:
        """The name and its synonyms: every word the templates are filled with."""
        return (self.name, *self.synonyms)

    def to_dict(self) -> dict:
        """The concept as the registry writes it (empty fields left out)."""
        out: dict = {"name": self.name}
        if self.synonyms:
            out["synonyms"] = list(self.synonyms)
        if self.prompts:
            out["prompts"] = list(self.prompts)
        if self.context:
            out["context"] = True
        return out


def _strings(values, what: str, name: str) -> tuple[str, ...]:
    if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"concept {name!r}: {what} must be a list of non-empty strings, got {values!r}")
    return tuple(v.strip() for v in values)


def slug(name: str) -> str:
    """A filesystem-safe, lower-case folder name for a concept name ('Traffic light' -> 'traffic-light')."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if not text:
        raise ValueError(f"concept name {name!r} has no letters or digits to name a folder with")
    return text[:80]


def _key(name: str) -> str:
    return name.strip().casefold()


def check_unique(concepts: list[Concept]) -> None:
    """Raise ValueError if two concepts share a name (case-insensitive) or a folder name."""
    names: dict[str, str] = {}
    slugs: dict[str, str] = {}
    for concept in concepts:
        if _key(concept.name) in names:
            raise ValueError(f"concept {concept.name!r} is listed twice (as {names[_key(concept.name)]!r})")
        if concept.slug in slugs:
            raise ValueError(
                f"concepts {slugs[concept.slug]!r} and {concept.name!r} would share the folder {concept.slug!r}"
            )
        names[_key(concept.name)] = concept.name
        slugs[concept.slug] = concept.name


def load_registry(path: Path | str) -> list[Concept]:
    """The concepts of a registry file, in file order; a missing file is an empty registry."""
    path = Path(path)
    if not path.exists():
        return []
    if not path.is_file():
        raise FileNotFoundError(f"concept registry is not a file: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("concepts", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a mapping with a 'concepts' list")
    concepts = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or "name" not in entry:
            raise ValueError(f"{path}: each concept needs a name, got {entry!r}")
        unknown = set(entry) - {"name", "synonyms", "prompts", "context"}
        if unknown:
            raise ValueError(f"{path}: concept {entry['name']!r} has unknown fields {sorted(unknown)}")
        concepts.append(
            Concept(
                str(entry["name"]),
                tuple(entry.get("synonyms") or ()),
                tuple(entry.get("prompts") or ()),
                entry.get("context", False),
            )
        )
    check_unique(concepts)
    return concepts


def save_registry(path: Path | str, concepts: list[Concept]) -> None:
    """Write the registry file atomically."""
    check_unique(concepts)
    text = yaml.safe_dump({"concepts": [c.to_dict() for c in concepts]}, sort_keys=False, allow_unicode=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def add_concept(concepts: list[Concept], concept: Concept) -> list[Concept]:
    """The registry with `concept` appended; ValueError if its name (or folder name) is already taken."""
    for other in concepts:
        if _key(other.name) == _key(concept.name):
            raise ValueError(f"concept {concept.name!r} is already in the registry (as {other.name!r})")
    out = [*concepts, concept]
    check_unique(out)
    return out


def remove_concept(concepts: list[Concept], name: str) -> list[Concept]:
    """The registry without the concept called `name` (case-insensitive); ValueError if there is none."""
    out = [c for c in concepts if _key(c.name) != _key(name)]
    if len(out) == len(concepts):
        raise ValueError(f"no concept named {name!r} in the registry")
    return out


def select(concepts: list[Concept], names: list[str] | tuple[str, ...] | None) -> list[Concept]:
    """The concepts called `names` in that order (all of them for None); ValueError for an empty or unknown one."""
    if not concepts:
        raise ValueError("the concept registry is empty; add concepts with 'coarchive concepts add NAME'")
    if not names:
        return list(concepts)
    by_key = {_key(c.name): c for c in concepts}
    unknown = [n for n in names if _key(n) not in by_key]
    if unknown:
        raise ValueError(f"unknown concept(s) {', '.join(map(repr, unknown))}; known: {', '.join(by_key)}")
    return list({_key(n): by_key[_key(n)] for n in names}.values())
