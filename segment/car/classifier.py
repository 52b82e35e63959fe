"""CaR's mask classifier: each prompted image encoded once and scored against every template of every query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.clip_dense import vit_tokens_before_last_block

LAYERS = ("final", "penultimate")  # which block's CLS token the image embedding reads


@torch.no_grad()
def encode_sentences(loaded: Any, sentences: list[str]) -> torch.Tensor:
    """L2-normalised text embeddings (S, d) of sentences, in the model dtype."""
    tokens = loaded.tokenizer(sentences).to(loaded.device)
    return F.normalize(loaded.model.encode_text(tokens), dim=-1).cpu()


class TemplateBank:
    """Per-template text embeddings of concepts, computed once per concept and kept."""

    def __init__(self, loaded: Any, templates: Sequence[str]) -> None:
        if not templates or any("{}" not in t for t in templates):
            raise ValueError(f"templates must be a non-empty list of format strings with '{{}}', got {templates!r}")
        self.loaded, self.templates = loaded, tuple(templates)
        self._cache: dict[str, torch.Tensor] = {}  # concept -> (T, d)

    def per_template(self, concepts: Sequence[str]) -> torch.Tensor:
        """(T, Q, d) unit embeddings: template t filled with concept q."""
        missing = [c for c in dict.fromkeys(concepts) if c not in self._cache]
        if missing:
            emb = encode_sentences(self.loaded, [t.format(c) for c in missing for t in self.templates])
            for i, c in enumerate(missing):
                self._cache[c] = emb[i * len(self.templates) : (i + 1) * len(self.templates)]
        return torch.stack([self._cache[c] for c in concepts], 1)  # (T, Q, d)

    def ensembled(self, concepts: Sequence[str]) -> torch.Tensor:
        """(Q, d) unit embeddings: mean over templates, renormalised."""
        return F.normalize(self.per_template(concepts).mean(0), dim=-1)


@torch.no_grad()
def encode_images(loaded: Any, images: Sequence[np.ndarray], layer: str = "final") -> torch.Tensor:
    """L2-normalised embeddings (P, d) (model dtype) of same-sized (H, W, 3) uint8 images, resized whole to the model's
    square input; `layer` "penultimate" reads the CLS token entering the last block (the official code's choice)."""
    from pipeline.core.pixels import normalise_pixels

    if layer not in LAYERS:
        raise ValueError(f"unknown classifier layer {layer!r}; choose from {', '.join(LAYERS)}")
    pixels = normalise_pixels(loaded, np.stack(images))  # (P, 3, S, S)
    visual = loaded.model.visual
    pixels = pixels.to(visual.conv1.weight.dtype)
    if layer == "final":
        emb = loaded.model.encode_image(pixels)
    else:
        tokens, _ = vit_tokens_before_last_block(visual, pixels)
        emb = visual.ln_post(tokens[:, 0])
        emb = emb @ visual.proj if visual.proj is not None else emb
    return F.normalize(emb, dim=-1).cpu()


def template_scores(images: torch.Tensor, texts: torch.Tensor, logit_scale: float = 100.0) -> torch.Tensor:
    """sum over templates of softmax over queries of logit_scale * cos: (P, Q) from images (P, d), texts (T, Q, d)."""
    logits = logit_scale * torch.einsum("pd,tqd->tpq", images, texts.to(images.dtype))  # (T, P, Q)
    return torch.softmax(logits, dim=-1).sum(0)


def query_scores(summed: torch.Tensor, evidence: torch.Tensor | None = None, weight: float = 0.0) -> torch.Tensor:
    """CaR's mask scores (P, Q): softmax over queries of the template-summed probabilities, plus `weight` times
    optional extra evidence (P, Q) (e.g. the segment bank's)."""
    if evidence is not None and weight:
        summed = summed + weight * evidence
    return torch.softmax(summed, dim=-1)


class MaskClassifier:
    """Scores prompted images (one per proposal) against the current queries."""

    def __init__(self, loaded: Any, templates: Sequence[str], logit_scale: float = 100.0, layer: str = "final") -> None:
        if layer not in LAYERS:
            raise ValueError(f"unknown classifier layer {layer!r}; choose from {', '.join(LAYERS)}")
        self.loaded, self.layer, self.logit_scale = loaded, layer, float(logit_scale)
        self.text = TemplateBank(loaded, templates)

    def summed(self, prompted: Sequence[np.ndarray], queries: Sequence[str]) -> torch.Tensor:
        """Template-summed probabilities (P, Q) of each prompted image over `queries`."""
        images = encode_images(self.loaded, prompted, self.layer)  # (P, d)
        return template_scores(images, self.text.per_template(queries), self.logit_scale)
