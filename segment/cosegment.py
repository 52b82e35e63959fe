"""ReCo co-segmentation: seeds shared across an archive's images, LGC and CE pixel weights, reference embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from segment.bank import SegmentBank
    from segment.dense_encoders import DenseEncoder

# About 64 MB of float32 similarities per block: one row image against a group of column images.
BLOCK_ELEMENTS = 16_000_000
# "paper": a pixel's score is the mean over the *other* images of its best similarity there (METHODS.md, ReCo 4).
# "official": NoelShin/reco's rule, kept to reproduce its numbers: the mean over all N images, own image included,
# where image j's column is the best over images j..2j (its column slice), in float32 (its score grid's dtype).
SEED_RULES = ("paper", "official")


def real(x: torch.Tensor) -> torch.Tensor:
    """x as float64 if it is float64, else as float32: float64 inputs stay exact (the parity checks), others compute
    in float32."""
    return x if x.dtype == torch.float64 else x.float()


def check_seed_rule(rule: str) -> str:
    """`rule` if it is one of SEED_RULES, else ValueError naming them."""
    if rule not in SEED_RULES:
        raise ValueError(f"unknown seed rule {rule!r}; choose from {', '.join(SEED_RULES)}")
    return rule


def _check(features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Validate (N, h, w, d) features and (N, h, w) weights; return the weights (ones when None)."""
    if features.ndim != 4:
        raise ValueError(f"features must be (N, h, w, d), got shape {tuple(features.shape)}")
    if features.shape[0] < 2:
        raise ValueError(f"co-segmentation needs at least 2 images, got {features.shape[0]}")
    if weights is None:
        return features.new_ones(features.shape[:3])
    if tuple(weights.shape) != tuple(features.shape[:3]):
        raise ValueError(f"weights shape {tuple(weights.shape)} does not match features {tuple(features.shape[:3])}")
    return weights.to(features)


@torch.no_grad()
def seed_scores(features: torch.Tensor, weights: torch.Tensor | None = None, rule: str = "paper") -> torch.Tensor:
    """Each pixel's seed score (N, h, w): mean over the *other* images of its best weighted similarity there.

    features (N, h, w, d) L2-normalised; weights (N, h, w) scale the similarity columns (ones when None).
    `rule` "official" scores as the official code does (see SEED_RULES). Computed one row image at a time against
    groups of column images, never as an (N*h*w)^2 matrix.
    """
    check_seed_rule(rule)
    weights = _check(features, weights)
    n, h, w, d = features.shape
    p = h * w
    x = real(features.reshape(n, p, d))  # (n, p, d)
    cw = weights.reshape(n, p).to(x.dtype)  # (n, p)
    group = max(1, BLOCK_ELEMENTS // (p * p))
    scores = torch.empty(n, p, dtype=x.dtype)
    for i in range(n):
        best = torch.empty(p, n, dtype=x.dtype)  # (p, n): row pixel's max weighted similarity within each image
        for start in range(0, n, group):
            cols = x[start : start + group]  # (g, p, d)
            sim = torch.einsum("pd,gqd->pgq", x[i], cols) * cw[start : start + group][None]  # (p, g, p)
            best[:, start : start + len(cols)] = sim.amax(-1)
        if rule == "official":
            scores[i] = torch.stack([best[:, j : 2 * j + 1].amax(1) for j in range(n)], 1).float().mean(1)
            continue
        best[:, i] = 0.0  # a pixel's own image is not evidence that the pattern is shared
        scores[i] = best.sum(1) / (n - 1)
    return scores.reshape(n, h, w)


@dataclass
class Cosegmentation:
    """The result of co-segmenting one archive: the reference embedding and one seed per image."""

    reference: torch.Tensor  # (d,) float32, L2-normalised
    seeds: torch.Tensor  # (N, 2) int64: (row, col) of each image's seed on the feature grid
    scores: torch.Tensor  # (N,) float32: each seed's score


@torch.no_grad()
def cosegment(features: torch.Tensor, weights: torch.Tensor | None = None, rule: str = "paper") -> Cosegmentation:
    """Co-segment an archive: seed = each image's best-scoring pixel; reference = normalised mean of seed features."""
    scores = seed_scores(features, weights, rule)  # (n, h, w)
    n, h, w, d = features.shape
    flat = scores.reshape(n, -1).argmax(1)  # (n,)
    seed_feats = real(features.reshape(n, h * w, d)[torch.arange(n), flat])  # (n, d)
    reference = F.normalize(seed_feats.mean(0), dim=0)
    seeds = torch.stack([flat // w, flat % w], 1)
    return Cosegmentation(reference, seeds, scores.reshape(n, -1)[torch.arange(n), flat])


def resize_map(values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize (N, gh, gw) maps to (N, *grid)."""
    if tuple(values.shape[1:]) == tuple(grid):
        return values
    return F.interpolate(values[:, None], size=grid, mode="bilinear", align_corners=False)[:, 0]


@torch.no_grad()
def lgc_weights(clip_features: torch.Tensor, text: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Language-guided weights (N, *grid) in [0, 1]: sigmoid(10 * cos(DenseCLIP patch, text)), resized to `grid`.

    clip_features (N, gh, gw, dc) L2-normalised; text (dc,) the concept's prompt-ensembled embedding.
    """
    if clip_features.shape[-1] != text.shape[-1]:
        raise ValueError(f"DenseCLIP dim {clip_features.shape[-1]} differs from text embedding dim {text.shape[-1]}")
    x = real(clip_features)
    cos = x @ F.normalize(text.to(x.dtype), dim=-1)  # (N, gh, gw)
    return resize_map(torch.sigmoid(10 * cos), grid)


@torch.no_grad()
def context_weights(features: torch.Tensor, context_refs: torch.Tensor) -> torch.Tensor:
    """Context-elimination weights (N, h, w) in [0, 1]: prod over context references r of 1 - sigmoid(cos(f, r))."""
    if context_refs.ndim != 2 or context_refs.shape[1] != features.shape[-1]:
        raise ValueError(f"context references must be (J, {features.shape[-1]}), got {tuple(context_refs.shape)}")
    if len(context_refs) == 0:
        return features.new_ones(features.shape[:3])
    x = real(features)
    cos = torch.einsum("nhwd,jd->nhwj", x, context_refs.to(x.dtype))
    return (1 - torch.sigmoid(cos)).prod(-1)


@dataclass
class ConceptImages:
    """One concept's archive as co-segmentation needs it: images, text embedding, context flag, provenance."""

    concept: str
    images: list  # (H, W, 3) uint8 arrays in rank order
    text: torch.Tensor  # (d_clip,) prompt-ensembled CLIP text embedding
    context: bool = False
    ids: list[int] | None = None  # pool ids of the images, same order
    source: str | None = None  # the archive folder


def build_order(archives: list[ConceptImages]) -> list[int]:
    """Indices of `archives` in build order: context concepts first (in their given order), then the others."""
    return [i for i, a in enumerate(archives) if a.context] + [i for i, a in enumerate(archives) if not a.context]


@torch.no_grad()
def build_bank(
    archives: list[ConceptImages],
    encoder: DenseEncoder,
    saliency: DenseEncoder | None = None,
    lgc: bool = True,
    ce: bool = True,
    progress: bool = False,
    provenance: dict | None = None,
    seed_rule: str = "paper",
) -> SegmentBank:
    """Co-segment every archive into a SegmentBank (concepts in input order); context concepts are built first.

    encoder: a DenseEncoder for the archive features; saliency: a ClipDenseEncoder (value path) for LGC.
    CE: each concept's weights are multiplied by 1 - sigmoid(cos(f, r)) for every context reference built before it.
    seed_rule: "paper" (default) or "official" (the official code's seed scores, see SEED_RULES).
    """
    from tqdm import tqdm

    from segment.bank import SegmentBank

    if not archives:
        raise ValueError("no archives to co-segment")
    check_seed_rule(seed_rule)  # before any encoding
    names = [a.concept for a in archives]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate concepts: {names}")
    if lgc and saliency is None:
        raise ValueError("LGC needs a CLIP dense encoder (saliency); pass one or set lgc=False")
    for a in archives:
        if len(a.images) < 2:
            raise ValueError(f"concept {a.concept!r}: co-segmentation needs at least 2 images, got {len(a.images)}")
    refs: dict[str, torch.Tensor] = {}
    context_built: list[torch.Tensor] = []  # (d,) references of context concepts, in build order
    per_concept: dict[str, dict] = {}
    order = build_order(archives)
    bar = tqdm(order, desc="cosegment", unit="concept", disable=not progress)
    for i in bar:
        a = archives[i]
        bar.set_postfix_str(a.concept)
        feats = encoder.encode(a.images)  # (n, h, w, d)
        weights = feats.new_ones(feats.shape[:3])  # (n, h, w)
        if lgc:
            same = saliency is encoder
            clip_feats = feats if same else saliency.encode(a.images)  # (n, gh, gw, dc)
            weights = weights * lgc_weights(clip_feats, a.text, tuple(feats.shape[1:3]))
        if ce and context_built:
            weights = weights * context_weights(feats, torch.stack(context_built))
        result = cosegment(feats, weights, rule=seed_rule)
        refs[a.concept] = result.reference
        if a.context:
            context_built.append(result.reference)
        per_concept[a.concept] = {
            "archive": a.source,
            "images": len(a.images),
            "ids": list(a.ids) if a.ids is not None else None,
            "seeds": result.seeds.tolist(),
            "seed_scores": [round(float(s), 5) for s in result.scores],
            "grid": list(feats.shape[1:3]),
        }
    params = {
        "lgc": lgc,
        "ce": ce,
        "context": [archives[i].concept for i in order if archives[i].context],
        "build_order": [archives[i].concept for i in order],
        "k": max(len(a.images) for a in archives),
        "saliency": getattr(saliency, "name", None) if lgc else None,
        "seed_rule": seed_rule,
    }
    return SegmentBank(
        names,
        torch.stack([refs[n] for n in names]),
        torch.stack([F.normalize(a.text.float(), dim=-1) for a in archives]),
        encoder=encoder.name,
        method="reco-cosegment",
        params=params,
        provenance={**(provenance or {}), "concepts": per_concept},
    )
