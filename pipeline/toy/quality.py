"""Quality of a CLIP on the toy world: text-to-image precision@k per thing and MaskCLIP-style dense mIoU."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.core.clip_dense import clip_dense_features
from pipeline.core.models import LoadedModel
from pipeline.core.pixels import image_embeddings, normalise_pixels
from pipeline.core.text import TOY_TEMPLATES as TEMPLATES  # noqa: F401 (the toy scripts import it from here)
from pipeline.core.text import text_embeddings
from pipeline.toy.export import render_as_pooled
from pipeline.toy.world import WorldSpec
from segment.metrics import confusion_matrix, iou_per_class

POOL_SEED = 7_000_001
BENCH_SEED = 7_000_002
WORLD_SEED_STRIDE = 1000  # world seed N draws the pool from POOL_SEED + N * stride and the benchmark likewise


def held_out(base_seed: int, world_seed: int) -> int:
    """The render seed of one held-out scene set (pool, benchmark, targets) in world `world_seed` (0: the README's)."""
    if world_seed < 0:
        raise ValueError(f"world_seed must be non-negative, got {world_seed}")
    return base_seed + world_seed * WORLD_SEED_STRIDE


def non_negative_int(text: str) -> int:
    """argparse type of --world-seed(s): a non-negative integer, else a one-line usage error."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a size option: a positive integer, else a one-line usage error."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """Per concept, the fraction of the top-k items (by score, (N, C)) that are relevant ((N, C) bool)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    top = np.argsort(-scores, axis=0, kind="stable")[:k]  # (k, C)
    return np.take_along_axis(relevant, top, axis=0).mean(0)


def r_precision(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per concept, precision at R, R being the number of relevant items (NaN where R = 0)."""
    out = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        r = int(relevant[:, c].sum())
        if r:
            out[c] = precision_at_k(scores[:, c : c + 1], relevant[:, c : c + 1], r)[0]
    return out


def render_many(spec: WorldSpec, seed: int, count: int, workers: int | None = None, progress: bool = True):
    """Render `count` scenes (JPEG round-tripped): images (N, H, W, 3), masks (N, H, W), thing names per image."""
    jobs = [(spec, seed, i) for i in range(count)]
    with ProcessPoolExecutor(workers) as pool:
        done = list(
            tqdm(
                pool.map(render_as_pooled, jobs, chunksize=128),
                total=count,
                desc="render",
                disable=not progress,
            )
        )
    things = [[shape for shape, _ in scene.things] for scene in done]
    return np.stack([s.image for s in done]), np.stack([s.mask for s in done]), things


@dataclass
class ToyQuality:
    """Measured quality of a model on the toy world."""

    precision: dict[str, float]  # thing -> precision@k
    r_precision: dict[str, float]
    iou: dict[str, float]  # class -> dense IoU, MaskCLIP value path
    iou_tokens: dict[str, float]  # class -> dense IoU, regular token path
    k: int
    pool_size: int
    bench_size: int
    world_seed: int = 0

    def mean_precision(self, names: list[str]) -> float:
        """Mean precision@k over `names`."""
        return float(np.mean([self.precision[n] for n in names]))

    @property
    def miou(self) -> float:
        """Dense mIoU over all classes (MaskCLIP value path)."""
        return float(np.nanmean(list(self.iou.values())))

    @property
    def miou_tokens(self) -> float:
        """Dense mIoU over all classes (regular token path)."""
        return float(np.nanmean(list(self.iou_tokens.values())))


@torch.no_grad()
def dense_labels(
    loaded: LoadedModel, images: np.ndarray, class_emb: torch.Tensor, batch_size: int = 64, path: str = "value"
) -> np.ndarray:
    """Per-pixel argmax of cosine(MaskCLIP patch feature, class embedding), bilinearly upsampled: (N, H, W) uint8."""
    out = []
    for start in range(0, len(images), batch_size):
        pixels = normalise_pixels(loaded, images[start : start + batch_size])
        feats = clip_dense_features(loaded.model.visual, pixels, path)  # (B, gh, gw, d)
        logits = torch.einsum("bhwd,cd->bchw", feats, class_emb.to(feats))
        logits = F.interpolate(logits, size=images.shape[1:3], mode="bilinear", align_corners=False)
        out.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def measure_toy_quality(
    loaded: LoadedModel,
    spec: WorldSpec | None = None,
    pool_size: int = 10_000,
    bench_size: int = 500,
    k: int = 50,
    progress: bool = True,
    world_seed: int = 0,
) -> ToyQuality:
    """Measure precision@k (text to image) over a held-out pool and dense mIoU over held-out benchmark scenes.

    `world_seed` picks another held-out world (0: the README's protocol); every one is disjoint from training scenes.
    """
    spec = spec or WorldSpec()
    images, _, present = render_many(spec, held_out(POOL_SEED, world_seed), pool_size, progress=progress)
    image_emb = image_embeddings(loaded, images)
    thing_emb = text_embeddings(loaded, list(spec.things))
    scores = (image_emb @ thing_emb.T).numpy()  # (N, T)
    relevant = np.array([[t in names for t in spec.things] for names in present])
    prec = precision_at_k(scores, relevant, k)
    rprec = r_precision(scores, relevant)
    bench_images, masks, _ = render_many(spec, held_out(BENCH_SEED, world_seed), bench_size, progress=progress)
    class_emb = text_embeddings(loaded, list(spec.classes))
    iou = {}
    for path in ("value", "tokens"):
        pred = dense_labels(loaded, bench_images, class_emb, path=path)
        iou[path] = iou_per_class(confusion_matrix(pred, masks, len(spec.classes)))
    return ToyQuality(
        precision=dict(zip(spec.things, prec.tolist(), strict=True)),
        r_precision=dict(zip(spec.things, rprec.tolist(), strict=True)),
        iou=dict(zip(spec.classes, iou["value"].tolist(), strict=True)),
        iou_tokens=dict(zip(spec.classes, iou["tokens"].tolist(), strict=True)),
        k=k,
        pool_size=pool_size,
        bench_size=bench_size,
        world_seed=world_seed,
    )
