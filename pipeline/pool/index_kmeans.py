"""Spherical k-means and nearest-centroid assignment in torch: the GPU twin of faiss's IVF training.

It follows faiss's Clustering for an inner-product IVF (random initial centroids, at most 256 points per centroid,
10 iterations, centroids renormalised each iteration, empty clusters split off the large ones), so an index trained
here matches one trained by faiss in recall; tests run it on the CPU against faiss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

NITER = 10  # faiss's IVF default (IndexIVF sets cp.niter = 10)
MAX_POINTS_PER_CENTROID = 256  # faiss subsamples beyond this
SEED = 1234  # faiss's ClusteringParameters default
SCORES_PER_BATCH = 1 << 27  # (rows x centroids) scores held at once: 512 MiB of float32


def assign_torch(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index (n,) int64 of the highest-inner-product centroid of each row of `x` (n, d), batched on its device."""
    import torch

    rows = max(1, SCORES_PER_BATCH // max(1, len(centroids)))
    out = torch.empty(len(x), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), rows):
        out[start : start + rows] = (x[start : start + rows] @ centroids.T).argmax(dim=1)  # (b, k) -> (b,)
    return out


def kmeans_torch(
    x: np.ndarray, k: int, device: str = "cpu", niter: int = NITER, seed: int = SEED, spherical: bool = True
) -> np.ndarray:
    """Centroids (k, d) float32 of `x` (n, d) float32 by inner-product k-means on a torch device."""
    import torch

    n = len(x)
    if k <= 0 or n < k:
        raise ValueError(f"k-means needs at least k={k} > 0 points, got {n}")
    rng = np.random.default_rng(seed)
    if n > k * MAX_POINTS_PER_CENTROID:
        x = x[np.sort(rng.choice(n, k * MAX_POINTS_PER_CENTROID, replace=False))]
    data = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)  # (n', d)
    centroids = data[torch.from_numpy(rng.choice(len(data), k, replace=False)).to(device)].clone()  # (k, d)
    for _ in range(niter):
        labels = assign_torch(data, centroids)  # (n',)
        sums = torch.zeros_like(centroids).index_add_(0, labels, data)  # (k, d)
        counts = torch.bincount(labels, minlength=k)  # (k,)
        centroids = sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)
        centroids = _split_empty(centroids, counts, rng)
        if spherical:
            centroids = torch.nn.functional.normalize(centroids, dim=1)
    return centroids.cpu().numpy().astype(np.float32)


def _split_empty(centroids: torch.Tensor, counts: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Give each empty cluster half of a large one (chosen in proportion to size), as faiss does."""
    sizes = counts.cpu().numpy().astype(np.float64)
    empty = np.flatnonzero(sizes == 0)
    if not len(empty):
        return centroids
    centroids = centroids.clone()
    eps = 1.0 / 1024
    sign = np.where(np.arange(centroids.shape[1]) % 2 == 0, 1 + eps, 1 - eps).astype(np.float32)
    for ci in empty:
        cj = int(rng.choice(len(sizes), p=sizes / sizes.sum()))
        base = centroids[cj].clone()
        factor = centroids.new_tensor(sign)
        centroids[ci] = base * factor
        centroids[cj] = base / factor
        sizes[ci] = sizes[cj] / 2
        sizes[cj] -= sizes[ci]
    return centroids
