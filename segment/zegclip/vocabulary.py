"""Class queries' text side: concept names, their CLIP text embeddings and optional bank references fused in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline.core.io import atomic_path

TEMPLATES = ("a photo of a {}.",)  # ZegCLIP VOC's single template


@dataclass
class Vocabulary:
    """Known concepts, text embeddings (K, d), bank references (concept -> (d,)) and the fusion weight.

    A concept's query embedding is normalize((1 - fusion) * t_c + fusion * r_c) when it has a reference and
    fusion > 0, else t_c. References must live in the joint image-text space (banks of the 'clip' encoder).
    """

    concepts: list[str]
    text: torch.Tensor  # (K, d) float32, unit rows
    references: dict[str, torch.Tensor] = field(default_factory=dict)  # concept -> (d,) float32, unit
    fusion: float = 0.0

    def __post_init__(self) -> None:
        self.concepts = [str(c) for c in self.concepts]
        if len(set(self.concepts)) != len(self.concepts):
            raise ValueError(f"duplicate concepts: {self.concepts}")
        if self.text.ndim != 2 or self.text.shape[0] != len(self.concepts):
            raise ValueError(f"text embeddings must be ({len(self.concepts)}, d), got {tuple(self.text.shape)}")
        if not 0.0 <= self.fusion <= 1.0:
            raise ValueError(f"fusion must be in [0, 1], got {self.fusion}")
        for name, ref in self.references.items():
            if name not in self.concepts:
                raise ValueError(f"bank reference for unknown concept {name!r}")
            if tuple(ref.shape) != (self.dim,):
                raise ValueError(f"bank reference of {name!r} is {tuple(ref.shape)}; the text space is {self.dim}-d")
        self.text = F.normalize(self.text.detach().float().cpu(), dim=-1)

    @property
    def dim(self) -> int:
        """Dimension of the joint space."""
        return int(self.text.shape[1])

    def index(self, concept: str) -> int:
        """Row of `concept`; ValueError naming the known concepts if absent."""
        try:
            return self.concepts.index(concept)
        except ValueError:
            raise ValueError(f"unknown concept {concept!r}; ZegCLIP knows {', '.join(self.concepts)}") from None

    def embeddings(self, concepts: Sequence[str]) -> torch.Tensor:
        """Query embeddings (C, d) of `concepts`, bank references fused in where present."""
        rows = []
        for name in concepts:
            t = self.text[self.index(name)]
            ref = self.references.get(name)
            if ref is not None and self.fusion > 0:
                t = F.normalize((1 - self.fusion) * t + self.fusion * ref.float(), dim=-1)
            rows.append(t)
        return torch.stack(rows)

    def extended(self, loaded, concepts: Sequence[str], templates: Sequence[str] = TEMPLATES) -> Vocabulary:
        """This vocabulary plus `concepts` it lacks, embedded with the CLIP `loaded`."""
        new = [c for c in dict.fromkeys(concepts) if c not in self.concepts]
        if not new:
            return self
        text = torch.cat([self.text, embed_texts(loaded, new, templates)])
        return Vocabulary(self.concepts + new, text, dict(self.references), self.fusion)

    def save(self, path: Path | str) -> None:
        """Write the vocabulary as one torch file (atomic)."""
        state = {"concepts": self.concepts, "text": self.text, "references": self.references, "fusion": self.fusion}
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: Path | str) -> Vocabulary:
        """Read what `save` wrote; FileNotFoundError if absent."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no ZegCLIP vocabulary at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return cls(state["concepts"], state["text"], dict(state["references"]), float(state["fusion"]))


def embed_texts(loaded, concepts: Sequence[str], templates: Sequence[str] = TEMPLATES) -> torch.Tensor:
    """Prompt-ensembled unit text embeddings (C, d) float32 of `concepts` with the CLIP `loaded`."""
    from pipeline.core.text import text_embeddings

    return text_embeddings(loaded, list(concepts), tuple(templates))


def bank_references(bank, concepts: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """concept -> (d,) reference of a SegmentBank (all its concepts, or those of `concepts` it has)."""
    names = bank.concepts if concepts is None else [c for c in concepts if c in bank.concepts]
    return {c: bank.reference(c).float() for c in names}
