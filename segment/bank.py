"""Segment banks: per-concept reference embeddings with their text embeddings, parameters and provenance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.core.io import atomic_path

TENSORS = "bank.safetensors"
META = "bank.json"
FORMAT = 1


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """float32 CPU rows of unit norm; rows already of unit norm are kept bit for bit (exact save/load round trips)."""
    x = x.detach().float().cpu().contiguous()
    if torch.allclose(x.norm(dim=-1), torch.ones(len(x)), atol=1e-6):
        return x
    return F.normalize(x, dim=-1).contiguous()


@dataclass
class SegmentBank:
    """Concept names, reference embeddings (C, d), CLIP text embeddings (C, d_clip), and how they were made."""

    concepts: list[str]
    references: torch.Tensor  # (C, d) float32, L2-normalised
    text_embeddings: torch.Tensor | None = None  # (C, d_clip) float32, L2-normalised; None for imported banks
    encoder: str = "unknown"
    method: str = "reco-cosegment"
    params: dict[str, Any] = field(default_factory=dict)  # lgc, ce, context concepts, k
    provenance: dict[str, Any] = field(default_factory=dict)  # model, run, per-concept archive, ids, seeds

    def __post_init__(self) -> None:
        self.concepts = [str(c) for c in self.concepts]
        if len(set(self.concepts)) != len(self.concepts):
            raise ValueError(f"duplicate concept names in bank: {self.concepts}")
        if self.references.ndim != 2 or self.references.shape[0] != len(self.concepts):
            raise ValueError(
                f"references must be ({len(self.concepts)}, d) for {len(self.concepts)} concepts, "
                f"got {tuple(self.references.shape)}"
            )
        self.references = _unit_rows(self.references)
        if self.text_embeddings is not None:
            if self.text_embeddings.ndim != 2 or self.text_embeddings.shape[0] != len(self.concepts):
                raise ValueError(
                    f"text embeddings must be ({len(self.concepts)}, d_clip), got {tuple(self.text_embeddings.shape)}"
                )
            self.text_embeddings = _unit_rows(self.text_embeddings)

    @property
    def dim(self) -> int:
        """Dimension of the reference embeddings (the dense encoder's)."""
        return int(self.references.shape[1])

    def index(self, concept: str) -> int:
        """Row of `concept`; ValueError naming the known concepts if absent."""
        try:
            return self.concepts.index(concept)
        except ValueError:
            raise ValueError(f"unknown concept {concept!r}; the bank has {', '.join(self.concepts)}") from None

    def reference(self, concept: str) -> torch.Tensor:
        """The reference embedding (d,) of one concept."""
        return self.references[self.index(concept)]

    def subset(self, concepts: list[str]) -> SegmentBank:
        """A bank of only `concepts`, in that order."""
        rows = [self.index(c) for c in concepts]
        text = self.text_embeddings[rows] if self.text_embeddings is not None else None
        prov = dict(self.provenance)
        if "concepts" in prov:
            prov["concepts"] = {c: prov["concepts"][c] for c in concepts if c in prov["concepts"]}
        return SegmentBank(list(concepts), self.references[rows], text, self.encoder, self.method, self.params, prov)

    def save(self, directory: Path | str) -> Path:
        """Write bank.safetensors, then bank.json (the done-marker), each atomically; return the folder."""
        from safetensors.torch import save_file

        directory = Path(directory)
        tensors = {"references": self.references}
        if self.text_embeddings is not None:
            tensors["text_embeddings"] = self.text_embeddings
        with atomic_path(directory / TENSORS) as tmp:
            save_file(tensors, str(tmp))
        meta = {
            "format": FORMAT,
            "concepts": self.concepts,
            "dim": self.dim,
            "text_dim": None if self.text_embeddings is None else int(self.text_embeddings.shape[1]),
            "encoder": self.encoder,
            "method": self.method,
            "params": self.params,
            "provenance": self.provenance,
        }
        with atomic_path(directory / META) as tmp:
            tmp.write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> SegmentBank:
        """Read a bank folder written by `save`; FileNotFoundError or ValueError if incomplete or inconsistent."""
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (META, TENSORS):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"not a segment bank (no {name}): {directory}")
        meta = json.loads((directory / META).read_text())
        tensors = load_file(str(directory / TENSORS))
        if "references" not in tensors:
            raise ValueError(f"{directory / TENSORS} has no 'references' tensor")
        refs, text = tensors["references"], tensors.get("text_embeddings")
        if refs.shape[1] != meta.get("dim", refs.shape[1]):
            raise ValueError(f"{directory}: references have dim {refs.shape[1]}, bank.json says {meta['dim']}")
        return cls(
            list(meta["concepts"]),
            refs,
            text,
            meta.get("encoder", "unknown"),
            meta.get("method", "unknown"),
            meta.get("params", {}),
            meta.get("provenance", {}),
        )
