"""How strongly a concept stands out of the pool: z-scores of its top-k against the pool's background scores.

The background is the concept's score distribution over pool images that do not show it. It is estimated from
the half of a seeded pool sample below the median score (a concept shown by fewer than half the images never
reaches it): μ is that median, σ the root mean square distance of the lower half from it. Plain mean and standard
deviation fail for common concepts: when 30% of the pool shows a circle, the circles themselves inflate σ and
their top-k stand only about 2 σ above the mean, exactly as far as the top-k of a concept absent from the pool.

An archive is judged on the items it holds (n of them; fewer than the k asked for when the pool ran short), against
the top n that a pool of the same size without the concept would produce by chance. It is weak when
- its items stand on average barely above that top n (mean z below the concept-free pool's plus WEAK_MARGIN), or
- fewer than half of them stand out (z at least STANDOUT_MARGIN above the concept-free pool's n-th best).
That is: the concept looks absent from the pool, or rare with fewer real images than k, or the model scores it low.
Scores cannot tell a rare concept's look-alikes from the concept itself (12 real crescents and 38 rings that score as
high are not flagged), and on the toy CLIP one case of all-correct items is still flagged: grass at k = 20 in a
3,000-image world with context (mean z 0.13 above the null, median item 0.46 above the n-th best) sits no higher
than dog, absent, in a pool of 300 at k = 50 (0.09 and 0.56); no margin on either statistic separates them by more
than 0.03.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from pipeline.pool.index import embedding_shards, sample_vectors

SAMPLE_SIZE = 20_000
SAMPLE_SEED = 0
# Calibrated on toy worlds of 300 to 3,000 images, with and without context, at k = 20 and 50 (see tests/archives);
# 0.25 flagged grass (all 20 items right, 0.24 above the null) on the 700-image context world of the dense toy CLIP.
WEAK_MARGIN = 0.2  # weak when the mean z of the items is below a concept-free pool's top n plus this
STANDOUT_MARGIN = 0.5  # an item stands out when its z is this far above the n-th best z of a concept-free pool
MIN_STANDOUT_FRACTION = 0.5  # weak when fewer than this share of the archive's items stand out


@dataclass(frozen=True)
class Strength:
    """One archive's strength against the pool."""

    strength: float  # mean z-score of the kept items
    standouts: int  # how many of the kept items have z >= standout_z
    standout_z: float
    null_strength: float  # the mean z-score the top n of a concept-free pool of this size would reach
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


def measure_strength(scores: np.ndarray, mean: float, std: float, pool_size: int) -> Strength:
    """Strength of an archive from the scores (n,) of the items it holds, in rank order, out of `pool_size` images."""
    z = (np.asarray(scores, dtype=np.float64) - mean) / std  # (n,)
    n = len(z)
    null = null_strength(n, pool_size)
    threshold = null_kth(n, pool_size) + STANDOUT_MARGIN
    standouts = int((z >= threshold).sum())
    strength = float(z.mean()) if n else 0.0
    reasons = []
    if n == 0:
        reasons.append("the archive holds no items")
    else:
        if strength < null + WEAK_MARGIN:
            reasons.append(f"its {n} items average z {strength:.2f}; a pool without the concept would reach {null:.2f}")
        if standouts < MIN_STANDOUT_FRACTION * n:
            reasons.append(
                f"only {standouts} of its {n} items score clearly above what a pool without the concept would reach "
                f"(z >= {threshold:.2f})"
            )
    reason = "; ".join(reasons)
    if n and reasons:
        reason += ": the concept looks absent or rare in the pool, or the model scores it low"
    return Strength(strength, standouts, threshold, null, bool(reason), reason, float(mean), float(std))
