"""GPU index builds and their CPU twin: torch k-means and list assignment match faiss on the CPU; --device."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from pipeline.app.cli import main
from pipeline.core.executors import LocalExecutor
from pipeline.pool.index import BuildOptions, build_index, exact_search, open_index, recall_at_k, set_nprobe
from pipeline.pool.index_device import CPU, Backend, faiss_gpus, parse_backend, resolve_device, torch_cuda
from pipeline.pool.index_kmeans import kmeans_torch
from pipeline.pool.index_train import add_vectors, train_index
from tests.pipeline.pool.test_index import _synthetic_embeddings, _unit

TORCH_CPU = Backend("torch", "cpu")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """24,000 clustered 64-d vectors in 4 shards, and 300 held-out queries near (not on) the clusters."""
    folder = tmp_path_factory.mktemp("device") / "emb"
    centres = _synthetic_embeddings(folder, shards=4, per_shard=6000, dim=64, seed=11)
    rng = np.random.default_rng(12)
    queries = _unit(centres[rng.integers(0, len(centres), 300)] + 0.6 * rng.normal(size=(300, 64)) / 8)
    return folder, queries


def _recall_at(index_dir: Path, folder: Path, queries: np.ndarray, nprobe: int) -> float:
    index = open_index(index_dir)
    set_nprobe(index, nprobe)
    _, exact = exact_search(folder, queries, 10)
    return recall_at_k(index.search(queries, 10)[1], exact, 10)


def test_torch_kmeans_build_matches_the_faiss_cpu_build(pool: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """The GPU path's k-means and assignment, run by torch on the CPU: recall within 0.01 of faiss's own build."""
    folder, queries = pool
    tune, held = queries[:100], queries[100:]
    cpu = build_index(folder, tmp_path / "cpu", tune, LocalExecutor(), progress=False)
    gpu_twin = build_index(
        folder, tmp_path / "torch", tune, LocalExecutor(), progress=False, options=BuildOptions(TORCH_CPU)
    )
    assert cpu["backend"] == "faiss-cpu" and gpu_twin["backend"] == "torch:cpu"
    assert cpu["factory"] == gpu_twin["factory"] == "IVF256,Flat" and gpu_twin["count"] == 24_000
    for nprobe in (2, 8):  # measured: 0.772 / 1.000 (faiss), 0.776 / 1.000 (torch), 200 held-out queries
        ours = _recall_at(tmp_path / "torch", folder, held, nprobe)
        reference = _recall_at(tmp_path / "cpu", folder, held, nprobe)
        assert abs(ours - reference) <= 0.01 + 1e-9, (nprobe, ours, reference)
    assert gpu_twin["recall"]["recall@10"] >= 0.95 and abs(gpu_twin["imbalance"] - cpu["imbalance"]) < 0.2


def test_torch_kmeans_is_spherical_and_fills_every_cluster() -> None:
    rng = np.random.default_rng(0)
    x = _unit(rng.normal(size=(3000, 16)))
    centroids = kmeans_torch(x, 64)  # (64, 16)
    assert centroids.shape == (64, 16) and np.allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-5)
    counts = np.bincount((x @ centroids.T).argmax(1), minlength=64)
    assert counts.min() > 0, counts
    with pytest.raises(ValueError, match="at least k"):
        kmeans_torch(x[:10], 64)


def test_assignment_on_torch_fills_the_same_lists_as_faiss(pool: tuple[Path, np.ndarray]) -> None:
    """add_core with lists found by torch equals faiss's add_with_ids, list by list (flat quantizer: both exact)."""
    folder, _ = pool
    vectors = np.load(folder / "00000.npy").astype(np.float32)
    ids = np.arange(len(vectors), dtype=np.int64) + (7 << 32)
    trained = train_index("IVF64,Flat", 64, vectors, CPU)
    by_faiss, by_torch = faiss.clone_index(trained), faiss.clone_index(trained)
    add_vectors(by_faiss, vectors, ids, CPU)
    add_vectors(by_torch, vectors, ids, TORCH_CPU)
    assert by_torch.ntotal == by_faiss.ntotal == len(vectors)
    a, b = faiss.extract_index_ivf(by_faiss).invlists, faiss.extract_index_ivf(by_torch).invlists
    same = sum(
        set(faiss.rev_swig_ptr(a.get_ids(i), a.list_size(i))) == set(faiss.rev_swig_ptr(b.get_ids(i), b.list_size(i)))
        for i in range(64)
    )
    assert same >= 63  # a float tie between two centroids may fall either way


def test_opq_and_hnsw_train_through_the_spelled_out_path(pool: tuple[Path, np.ndarray]) -> None:
    folder, queries = pool
    vectors = np.load(folder / "00001.npy")[:3000, :16].astype(np.float32)  # OPQ training is slow: keep it small
    vectors, queries = _unit(vectors), _unit(queries[:, :16])
    ids = np.arange(len(vectors), dtype=np.int64)
    for backend in (CPU, TORCH_CPU):
        index = train_index("OPQ4,IVF32_HNSW32,PQ4x4", 16, vectors, backend)
        assert index.is_trained and faiss.extract_index_ivf(index).quantizer.ntotal == 32
        add_vectors(index, vectors, ids, backend)
        faiss.extract_index_ivf(index).nprobe = 32
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        assert recall_at_k(index.search(queries, 10)[1], exact, 10) >= 0.3, backend  # PQ4x4 on 16-d, no re-ranking


def test_device_resolution() -> None:
    assert resolve_device("cpu") == CPU and parse_backend(str(TORCH_CPU)) == TORCH_CPU
    assert parse_backend("faiss-gpu") == Backend("faiss-gpu") and str(Backend("torch", "cuda")) == "torch:cuda"
    expected = Backend("faiss-gpu") if faiss_gpus() else Backend("torch", "cuda") if torch_cuda() else CPU
    assert resolve_device("auto") == expected
    with pytest.raises(ValueError, match="--device must be one of"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="unknown index backend"):
        Backend("opencl")


@pytest.mark.skipif(faiss_gpus() > 0 or torch_cuda(), reason="a GPU is present")
def test_device_cuda_without_a_gpu_is_a_one_line_error(pool: tuple[Path, np.ndarray], tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    (root / "embeddings").mkdir(parents=True)
    (root / "embeddings" / "toy").symlink_to(pool[0])
    assert main(["index", "--root", str(root), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coarchive: error: --device cuda: neither faiss-gpu nor torch") and err.count("\n") == 1


def test_index_command_takes_device_coarse_opq_rerank(toy_world: Path, tmp_path: Path, capsys) -> None:
    """`coarchive index --device cpu --coarse hnsw --opq off --rerank 0` as a user types it; bad values exit 2."""
    root = tmp_path / "root"
    assert main(["--quiet", "embed", "--pool", str(toy_world / "pool"), "--root", str(root), "--model", "toy"]) == 0
    args = ["index", "--root", str(root), "--device", "cpu", "--coarse", "hnsw", "--opq", "off", "--rerank", "0"]
    assert main(["--quiet", *args]) == 0
    out = capsys.readouterr().out
    assert "_HNSW32,Flat" in out and "faiss-cpu" in out, out
    for bad in (["--device", "tpu"], ["--coarse", "ivf"], ["--rerank", "-1"], ["--rerank", "x"]):
        with pytest.raises(SystemExit) as exit_:
            main(["index", "--root", str(root), *bad])
        assert exit_.value.code == 2
    assert "--rerank takes an integer >= 0" in capsys.readouterr().err


@pytest.mark.gpu
def test_torch_kmeans_on_cuda_matches_the_cpu_twin() -> None:
    rng = np.random.default_rng(1)
    x = _unit(rng.normal(size=(20_000, 64)))
    on_gpu, on_cpu = kmeans_torch(x, 128, device="cuda"), kmeans_torch(x, 128, device="cpu")
    gpu_fit = np.mean(np.max(x @ on_gpu.T, axis=1))
    cpu_fit = np.mean(np.max(x @ on_cpu.T, axis=1))
    assert abs(gpu_fit - cpu_fit) < 0.01


@pytest.mark.skipif(faiss_gpus() == 0, reason="needs faiss-gpu and a GPU")
def test_faiss_gpu_build_matches_the_cpu_build(pool: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    folder, queries = pool
    build_index(folder, tmp_path / "cpu", queries[:100], LocalExecutor(), progress=False)
    options = BuildOptions(Backend("faiss-gpu"))
    build_index(folder, tmp_path / "gpu", queries[:100], LocalExecutor(), progress=False, options=options)
    for nprobe in (2, 8):
        ours = _recall_at(tmp_path / "gpu", folder, queries[100:], nprobe)
        assert abs(ours - _recall_at(tmp_path / "cpu", folder, queries[100:], nprobe)) <= 0.01 + 1e-9
