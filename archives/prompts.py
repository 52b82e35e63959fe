"""Registry concepts as sentences and embeddings (one (d,) vector per concept), on the core text path."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from archives.registry import Concept
from pipeline.core.text import sentence_groups_embeddings, templates

if TYPE_CHECKING:
    from pipeline.core.models import LoadedModel


def concept_sentences(concept: Concept, template_set: str) -> list[str]:
    """Every sentence embedded for a concept: each term (name, synonyms) in each template, then its own prompts."""
    return [t.format(term) for term in concept.terms for t in templates(template_set)] + list(concept.prompts)


def concept_embeddings(loaded: LoadedModel, concepts: list[Concept], template_set: str) -> np.ndarray:
    """(C, d) float32 concept embeddings: the mean of each concept's L2-normalised sentence embeddings, renormalised.

    A concept with no synonyms or prompts gets exactly `pipeline.core.text.embed_words` of its name: one text path.
    """
    if not concepts:
        raise ValueError("no concepts to embed")
    return sentence_groups_embeddings(loaded, [concept_sentences(c, template_set) for c in concepts])
