"""How strongly a concept stands out of the pool: z-scores of its top-k against the pool's background scores.

The background is the concept's score distribution over pool images that do not show it. It is estimated from
the half of a seeded pool sample below the median score (a concept shown by fewer than half the images never
reaches it): μ is that median, σ the root mean square distance of the lower half from it. Plain mean and standard
deviation fail for common concepts: when 30% of the pool shows a circle, the circles themselves inflate σ and
their top-k stand only about 2 σ above the mean, exactly as far as the top-k of a concept absent from the pool.

A concept is weak when its top-k stand barely above where the top-k of a concept-free pool of the same size
would stand by chance (the mean of the top k/N tail of a normal distribution), or when fewer than half of them
stand clearly above the k-th best score of such a pool (a rare concept with fewer real images than k).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from pipeline.index import embedding_shards, sample_vectors

SAMPLE_SIZE = 20_000
SAMPLE_SEED = 0
# Both margins calibrated on toy worlds of 600 and 3,000 images at k = 20 and 50 (see tests/archives).
WEAK_MARGIN = 0.25  # weak when the mean z of the top k is below a concept-free pool's plus this
STANDOUT_MARGIN = 0.5  # an item stands out when its z is this far above the k-th best z of a concept-free pool
MIN_STANDOUT_FRACTION = 0.5  # weak when fewer than this share of the k items stand out


@dataclass(frozen=True)
class Strength:
    """One archive's strength against the pool."""

    strength: float  # mean z-score of the kept top-k
    standouts: int  # how many of the kept top-k have z >= standout_z
    standout_z: float
    null_strength: float  # the mean z-score the top-k of a concept-free pool of this size would reach
    weak: bool
    reason: str  # why it is weak ('' when it is not)
    pool_mean: float  # background μ
    pool_std: float  # background σ


def pool_sample(embeddings: Path, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Up to `size` stored pool vectors (n, d) float32, drawn evenly across shards with a fixed seed."""
    embeddings = Path(embeddings)
    return sample_vectors(embeddings, embedding_shards(embeddings), size, seed)[:size]


def background_stats(sample: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Background μ and σ (C,) of each query's scores over the pool sample (n, d), from the lower half."""
    scores = sample @ queries.T  # (n, C)
    median = np.median(scores, axis=0)  # (C,)
    below = np.where(scores <= median, scores - median, np.nan)  # (n, C)
    std = np.sqrt(np.nanmean(below**2, axis=0))
    return median, np.maximum(std, 1e-6)


def _tail(k: int, pool_size: int) -> float:
    return min(0.5, max(k, 1) / max(1, pool_size))


def null_kth(k: int, pool_size: int) -> float:
    """The z-score of the k-th best of `pool_size` standard normal scores (the 1 - k/N quantile)."""
    return NormalDist().inv_cdf(1 - _tail(k, pool_size))


def null_strength(k: int, pool_size: int) -> float:
    """Mean z-score of the top k of `pool_size` standard normal scores (the mean of the upper k/N tail)."""
    q = _tail(k, pool_size)
    return NormalDist().pdf(null_kth(k, pool_size)) / q


def measure_strength(scores: np.ndarray, mean: float, std: float, k: int, pool_size: int) -> Strength:
    """Strength of an archive whose kept scores (n,), in rank order, were asked for k items out of `pool_size`."""
    z = (np.asarray(scores, dtype=np.float64) - mean) / std  # (n,)
    strength = float(z.mean()) if len(z) else 0.0
    null = null_strength(k, pool_size)
    threshold = null_kth(k, pool_size) + STANDOUT_MARGIN
    standouts = int((z >= threshold).sum())
    reasons = []
    if strength < null + WEAK_MARGIN:
        reasons.append(f"mean z {strength:.2f}, a concept-free pool's top {k} would reach {null:.2f}")
    if standouts < MIN_STANDOUT_FRACTION * k:
        reasons.append(f"only {standouts} of {k} items stand out (z >= {threshold:.2f})")
    return Strength(strength, standouts, threshold, null, bool(reasons), "; ".join(reasons), float(mean), float(std))
