"""Prompt template sets and prompt-ensembled concept embeddings (one (d,) vector per registry concept)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from archives.registry import Concept

if TYPE_CHECKING:
    from pipeline.models import LoadedModel, ModelRef

# ReCo adds these scene-level sentences to the 80 ImageNet templates.
RECO_EXTRA = (
    "there is a {} in the scene.",
    "there is the {} in the scene.",
    "this is a {} in the scene.",
    "this is the {} in the scene.",
    "this is one {} in the scene.",
)
# CLIP-as-RNN's semantic templates (configs/voc.yaml in google-research/clip_as_rnn), as data.
CAR_TEMPLATES = (
    "a clean origami {}.",
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)
ZEGCLIP_TEMPLATES = ("a photo of a {}.",)
TEMPLATE_SETS = ("reco", "zegclip", "car", "toy")
TEXT_BATCH = 1024  # sentences per text-encoder call


def templates(name: str) -> tuple[str, ...]:
    """The format strings ('... {} ...') of a named template set."""
    if name == "reco":
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

        return (*(t("{}") for t in OPENAI_IMAGENET_TEMPLATES), *RECO_EXTRA)
    if name == "zegclip":
        return ZEGCLIP_TEMPLATES
    if name == "car":
        return CAR_TEMPLATES
    if name == "toy":
        from pipeline.toy.quality import TEMPLATES

        return tuple(TEMPLATES)
    raise ValueError(f"unknown template set {name!r}; choose one of {', '.join(TEMPLATE_SETS)}")


def default_template_set(ref: ModelRef) -> str:
    """'toy' for the toy model (its vocabulary knows only toy-world words), 'reco' for real CLIPs."""
    from pipeline.models import TOY_NAME

    return "toy" if ref.name == TOY_NAME else "reco"


def concept_sentences(concept: Concept, template_set: str) -> list[str]:
    """Every sentence embedded for a concept: each term (name, synonyms) in each template, then its own prompts."""
    return [t.format(term) for term in concept.terms for t in templates(template_set)] + list(concept.prompts)


def concept_embeddings(loaded: LoadedModel, concepts: list[Concept], template_set: str) -> np.ndarray:
    """(C, d) float32 concept embeddings: the mean of each concept's L2-normalised sentence embeddings, renormalised."""
    from pipeline.toy.quality import text_embeddings

    if not concepts:
        raise ValueError("no concepts to embed")
    sentences = [concept_sentences(c, template_set) for c in concepts]
    flat = [s for group in sentences for s in group]
    # "{}" as the only template: text_embeddings then returns each sentence's own normalised embedding
    batches = [flat[i : i + TEXT_BATCH] for i in range(0, len(flat), TEXT_BATCH)]
    parts = [text_embeddings(loaded, batch, ("{}",)).numpy() for batch in batches]
    each = np.concatenate(parts)  # (S, d) float32, unit rows
    out, start = [], 0
    for group in sentences:
        mean = each[start : start + len(group)].mean(0)  # (d,)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += len(group)
    return np.stack(out).astype(np.float32)  # (C, d)
