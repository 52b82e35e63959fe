"""Training an index and filling it, on the backend chosen by pipeline.pool.index_device.

On faiss-cpu with a flat coarse quantizer this is faiss's own `train` and `add_with_ids`, unchanged. Otherwise
the steps are spelled out: the OPQ rotation is trained (faiss, CPU), the coarse centroids come from k-means on the
backend (faiss-cpu, faiss-gpu or torch) and go into the quantizer (flat or HNSW), faiss trains the PQ codebooks on
the residuals, and each added vector's list is found on the backend, then handed to faiss with `add_core`.
"""

from __future__ import annotations

import faiss
import numpy as np
from wurlitzer import pipes

from pipeline.pool.index_device import CPU, Backend
from pipeline.pool.index_kmeans import NITER, SEED, assign_torch, kmeans_torch

# OPQ alternates a rotation with a whole PQ training; faiss's defaults (50 rounds after a 40-iteration first PQ,
# on 65,536 points) take many minutes on a few cores for 512-d, and most of the gain comes in the first rounds
OPQ_NITER = 8
OPQ_FIRST_PQ_NITER = 10
OPQ_TRAIN_POINTS = 32_768


def _transforms(index: faiss.Index) -> list[faiss.VectorTransform]:
    """The pre-transforms (OPQ) in front of the IVF, in order; [] for a bare IVF index."""
    if not isinstance(index, faiss.IndexPreTransform):
        return []
    return [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]


def has_hnsw_quantizer(index: faiss.Index) -> bool:
    """Whether the IVF's coarse quantizer is an HNSW graph (its build cannot go through faiss's own train)."""
    return isinstance(faiss.downcast_index(faiss.extract_index_ivf(index).quantizer), faiss.IndexHNSW)


def kmeans(x: np.ndarray, k: int, backend: Backend) -> np.ndarray:
    """Centroids (k, d) float32 of `x` (n, d) float32, spherical inner-product k-means on the backend."""
    if backend.kind == "torch":
        return kmeans_torch(x, k, device=backend.torch_device)
    km = faiss.Kmeans(x.shape[1], k, niter=NITER, seed=SEED, spherical=True, gpu=backend.kind == "faiss-gpu")
    km.train(np.ascontiguousarray(x, np.float32))
    return np.ascontiguousarray(km.centroids, np.float32)


def train_index(factory: str, dim: int, sample: np.ndarray, backend: Backend = CPU) -> faiss.Index:
    """An empty trained inner-product index of `factory` from `sample` (n, d) float32."""
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if backend == CPU and not has_hnsw_quantizer(index) and not _transforms(index):
        index.train(sample)  # the CPU path, as before
        return index
    x = np.ascontiguousarray(sample, np.float32)
    with pipes():  # OPQ's inner PQ trainings print warnings on C stderr for small samples
        for transform in _transforms(index):
            if isinstance(transform, faiss.OPQMatrix):
                transform.niter, transform.niter_pq_0, transform.max_train_points = (
                    OPQ_NITER,
                    OPQ_FIRST_PQ_NITER,
                    OPQ_TRAIN_POINTS,
                )
            transform.train(x)
            x = transform.apply(x)  # (n, d') in the rotated space
    ivf = faiss.extract_index_ivf(index)
    ivf.quantizer.add(kmeans(x, ivf.nlist, backend))  # HNSW builds its graph over the centroids here
    ivf.train(x)  # the quantizer already holds nlist centroids, so faiss trains only the codes (PQ)
    index.is_trained = True
    return index


def assign_lists(x: np.ndarray, centroids: np.ndarray, backend: Backend) -> np.ndarray:
    """The list (n,) int64 of each row of `x` (n, d): its highest-inner-product centroid, exactly, on the backend."""
    if backend.kind == "torch":
        import torch

        device = backend.torch_device
        return assign_torch(torch.from_numpy(x).to(device), torch.from_numpy(centroids).to(device)).cpu().numpy()
    if backend.kind == "faiss-gpu":
        flat = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(centroids.shape[1]))
        flat.add(centroids)
        return flat.search(x, 1)[1][:, 0].astype(np.int64)
    flat = faiss.IndexFlatIP(centroids.shape[1])
    flat.add(centroids)
    return flat.search(x, 1)[1][:, 0].astype(np.int64)


def add_vectors(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, backend: Backend = CPU) -> None:
    """Add `vectors` (n, d) float32 with `ids` (n,) int64; lists are assigned on the backend unless it is the CPU."""
    if backend == CPU:
        index.add_with_ids(vectors, ids)  # the quantizer assigns (flat: exact; HNSW: its graph search)
        return
    x = np.ascontiguousarray(vectors, np.float32)
    for transform in _transforms(index):
        x = transform.apply(x)
    ivf = faiss.extract_index_ivf(index)
    lists = np.ascontiguousarray(assign_lists(x, ivf.quantizer.reconstruct_n(0, ivf.nlist), backend))
    ids = np.ascontiguousarray(ids, np.int64)
    ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
    index.ntotal = ivf.ntotal
