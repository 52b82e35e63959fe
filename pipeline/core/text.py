"""The one text path: prompt template sets and prompt-ensembled text embeddings, the same in every command.

A word is embedded the same way wherever it is typed (query, index tuning, archive, serve): each of its terms in
each template of the model's template set, every sentence embedded and L2-normalised, the mean renormalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.registry import Registry

if TYPE_CHECKING:
    from pipeline.core.models import LoadedModel, ModelRef

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
# The toy CLIP's own four: its vocabulary knows only toy-world words.
TOY_TEMPLATES = ("a photo of a {}.", "a {}.", "there is a {} in the scene.", "this is a {} in the scene.")
TEXT_BATCH = 1024  # sentences per text-encoder call


def _reco_templates() -> tuple[str, ...]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return (*(t("{}") for t in OPENAI_IMAGENET_TEMPLATES), *RECO_EXTRA)


TEMPLATE_SETS: Registry[tuple[str, ...]] = Registry("template set")
TEMPLATE_SETS.add("reco", _reco_templates)  # the 80 ImageNet templates + ReCo's 5 scene sentences
TEMPLATE_SETS.add("zegclip", lambda: ZEGCLIP_TEMPLATES)
TEMPLATE_SETS.add("car", lambda: CAR_TEMPLATES)
TEMPLATE_SETS.add("toy", lambda: TOY_TEMPLATES)


def templates(name: str) -> tuple[str, ...]:
    """The format strings ('... {} ...') of a named template set; ValueError naming the sets otherwise."""
    return tuple(TEMPLATE_SETS.create(name))


def default_template_set(ref: ModelRef) -> str:
    """'toy' for the toy model (its vocabulary knows only toy-world words), 'reco' for real CLIPs."""
    from pipeline.core.models import TOY_NAME

    return "toy" if ref.name == TOY_NAME else "reco"


@torch.no_grad()
def text_embeddings(
    loaded: LoadedModel, concepts: Sequence[str], templates: Sequence[str] | None = None
) -> torch.Tensor:
    """Prompt-ensembled embeddings (C, d) float32 of `concepts`, L2-normalised, in one encoder call.

    Each sentence's embedding is normalised, the mean over templates renormalised. `templates` defaults to the
    model's own set (the toy CLIP's four, ReCo's 85 for real CLIPs).
    """
    if templates is None:
        templates = TEMPLATE_SETS.create(default_template_set(loaded.ref))
    texts = [t.format(c) for c in concepts for t in templates]
    tokens = loaded.tokenizer(texts).to(loaded.device)
    emb = F.normalize(loaded.model.encode_text(tokens).float(), dim=-1)
    emb = emb.reshape(len(concepts), len(templates), -1).mean(1)  # (C, d)
    return F.normalize(emb, dim=-1).cpu()


def sentence_groups_embeddings(loaded: LoadedModel, groups: Sequence[Sequence[str]]) -> np.ndarray:
    """(G, d) float32: per group of sentences, the mean of their L2-normalised embeddings, renormalised."""
    if not groups or any(not g for g in groups):
        raise ValueError("no sentences to embed")
    flat = [s for group in groups for s in group]
    batches = [flat[i : i + TEXT_BATCH] for i in range(0, len(flat), TEXT_BATCH)]
    each = np.concatenate([text_embeddings(loaded, batch, ("{}",)).numpy() for batch in batches])  # (S, d) unit
    out, start = [], 0
    for group in groups:
        mean = each[start : start + len(group)].mean(0)  # (d,)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += len(group)
    return np.stack(out).astype(np.float32)  # (G, d)


def embed_words(loaded: LoadedModel, words: Sequence[str], template_set: str | None = None) -> np.ndarray:
    """(C, d) float32 embeddings of plain words or phrases, each in every template of the model's template set."""
    if not words:
        raise ValueError("no text to embed")
    chosen = templates(template_set or default_template_set(loaded.ref))
    return sentence_groups_embeddings(loaded, [[t.format(w) for t in chosen] for w in words])
