"""The embed stage on the streaming loader: the bytes of the whole-shard path, device decode and precision twins, flags.

`_whole_shard` below is the embed stage as it was before the loader (read the whole shard, decode it with two
threads, preprocess, forward in chunks of 32): the streaming path must write exactly what it wrote.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.core.executors import LocalExecutor
from pipeline.core.models import ModelRef
from pipeline.core.shard_reader import decode_image, read_shard
from pipeline.core.stage import run_stage
from pipeline.pool.embed import EmbedStage, sample_id
from tests.pipeline.shard_files import encode, write_tar

TOY = ModelRef("toy")


@pytest.fixture(scope="module")
def mixed_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JPEG (RGB, grey, EXIF-turned), PNG, WebP, empty and non-image members; a truncated tar; an empty tar."""
    pool = tmp_path_factory.mktemp("mixed") / "pool"
    pool.mkdir()
    rng = np.random.default_rng(0)

    def noise(width: int, height: int) -> Image.Image:
        return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))

    exif = Image.Exif()
    exif[0x0112] = 6
    members = []
    for i in range(70):
        key, kind = f"{i:09d}", i % 7
        member = {
            0: (".jpg", lambda: encode(noise(120, 80), "JPEG")),
            1: (".png", lambda: encode(noise(64, 96), "PNG")),
            2: (".jpg", lambda: encode(noise(64, 32), "JPEG", exif=exif)),
            3: (".jpg", lambda: encode(noise(50, 50).convert("L"), "JPEG")),
            4: (".jpg", lambda i=i: b"not an image" if i % 2 else b""),
            5: (".webp", lambda: encode(noise(90, 70), "WEBP")),
            6: (".jpg", lambda: encode(noise(300, 200), "JPEG", quality=70)),
        }[kind]
        members += [(key + member[0], member[1]()), (key + ".txt", f"caption {i}".encode())]
    write_tar(pool / "00000.tar", members)
    write_tar(pool / "00001.tar", [(f"{i:09d}.jpg", encode(noise(80, 80), "JPEG")) for i in range(40)])
    data = (pool / "00001.tar").read_bytes()
    (pool / "00001.tar").write_bytes(data[: len(data) // 2 + 300])
    (pool / "00002.tar").write_bytes(b"")
    return pool


@torch.no_grad()
def _whole_shard(loaded, tar: Path, batch_size: int) -> tuple[np.ndarray, list[dict], dict]:
    """The embed stage's run_task before the streaming loader, frozen: vectors, parquet rows, problems."""
    contents = read_shard(str(tar))
    problems = dict(contents.problems)
    with ThreadPoolExecutor(2) as pool:
        decoded = list(pool.map(lambda s: decode_image(s.data), contents.samples))
        good = [(s, img) for s, (img, _) in zip(contents.samples, decoded, strict=True) if img is not None]
        for _, reason in decoded:
            if reason:
                problems[reason] = problems.get(reason, 0) + 1
        pixels = list(pool.map(lambda item: loaded.preprocess(Image.fromarray(item[1])), good))
    out, step = [], min(batch_size, 32)
    for start in range(0, len(pixels), step):
        features = loaded.model.encode_image(torch.stack(pixels[start : start + step]))
        out.append(F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float16))
    vectors = np.concatenate(out) if out else np.zeros((0, loaded.embed_dim), np.float16)
    shard = int(tar.stem)
    rows = [
        {
            "id": sample_id(shard, s.row),
            "key": s.key,
            "url": s.meta.get("url") or "",
            "caption": s.meta.get("caption") or "",
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
            "status": "ok",
        }
        for s, img in good
    ]
    return vectors, rows, problems


def _outputs(root: Path, shard: str) -> tuple[np.ndarray, list[dict], dict]:
    folder = root / "embeddings" / "toy"
    problems = json.loads((folder / f"{shard}.problems.json").read_text())
    return np.load(folder / f"{shard}.npy"), pq.read_table(folder / f"{shard}.parquet").to_pylist(), problems


@pytest.mark.parametrize(("workers", "batch_size"), [(0, 256), (2, 256), (2, 8)])
def test_streaming_writes_the_bytes_of_the_whole_shard_path(
    toy_model, mixed_pool: Path, toy_world: Path, tmp_path: Path, workers: int, batch_size: int
) -> None:
    reports = {}
    for pool in (mixed_pool, toy_world / "pool"):
        root = tmp_path / pool.parent.name
        stage = EmbedStage(str(pool), str(root), TOY, batch_size=batch_size, loader_workers=workers, prefetch=1)
        report = reports[pool] = run_stage(stage, LocalExecutor(), progress=False)
        assert not report.failed
        for tar in sorted(pool.glob("*.tar")):
            vectors, rows, problems = _outputs(root, tar.stem)
            old_vectors, old_rows, old_problems = _whole_shard(toy_model, tar, batch_size)
            assert vectors.dtype == np.float16 and vectors.tobytes() == old_vectors.tobytes(), tar
            assert rows == old_rows and problems == old_problems, tar
            stats = report.stats[tar.stem]
            assert list(stats) == ["samples", "embedded", *(f"skipped: {k}" for k in old_problems)]  # same order
    first = reports[mixed_pool].stats["00000"]
    assert first["embedded"] == 60 and first["skipped: empty image"] == first["skipped: not a decodable image"] == 5


def test_gpu_decode_twin_on_the_cpu_gives_the_same_rows_and_near_vectors(mixed_pool: Path, tmp_path: Path) -> None:
    """--decode gpu's path (batched torchvision decode, tensor resize) run on the CPU, against PIL decode."""
    runs = {}
    for decode in ("cpu", "gpu"):
        stage = EmbedStage(str(mixed_pool), str(tmp_path / decode), TOY, device="cpu", decode=decode, loader_workers=2)
        runs[decode] = run_stage(stage, LocalExecutor(), progress=False)
        assert not runs[decode].failed
    assert runs["cpu"].stats == runs["gpu"].stats
    for shard in ("00000", "00001"):
        cpu_vectors, cpu_rows, cpu_problems = _outputs(tmp_path / "cpu", shard)
        gpu_vectors, gpu_rows, gpu_problems = _outputs(tmp_path / "gpu", shard)
        assert cpu_rows == gpu_rows and cpu_problems == gpu_problems
        cosine = (cpu_vectors.astype(np.float32) * gpu_vectors.astype(np.float32)).sum(1)
        assert cosine.min() > 0.98 and not np.array_equal(cpu_vectors, gpu_vectors)  # JPEG rows took the other path


def test_bf16_autocast_on_the_cpu_is_close_and_fp16_needs_cuda(toy_world: Path, tmp_path: Path) -> None:
    pool = str(toy_world / "pool")
    run_stage(EmbedStage(pool, str(tmp_path / "fp32"), TOY, device="cpu"), LocalExecutor(), progress=False)
    stage = EmbedStage(pool, str(tmp_path / "bf16"), TOY, device="cpu", precision="bf16")
    assert not run_stage(stage, LocalExecutor(), progress=False).failed
    full, half = _outputs(tmp_path / "fp32", "00000")[0], _outputs(tmp_path / "bf16", "00000")[0]
    assert half.dtype == np.float16 and (full.astype(np.float32) * half.astype(np.float32)).sum(1).min() > 0.98
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        EmbedStage(pool, str(tmp_path), TOY, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="decode must be one of"):
        EmbedStage(pool, str(tmp_path), TOY, decode="nvjpeg")


@pytest.mark.gpu
def test_on_cuda_gpu_decode_and_fp16_stay_close_to_the_cpu(mixed_pool: Path, tmp_path: Path) -> None:
    run_stage(EmbedStage(str(mixed_pool), str(tmp_path / "cpu"), TOY, device="cpu"), LocalExecutor(), progress=False)
    stage = EmbedStage(str(mixed_pool), str(tmp_path / "cuda"), TOY, device="cuda", loader_workers=2)
    assert not run_stage(stage, LocalExecutor(), progress=False).failed
    cpu, cuda = _outputs(tmp_path / "cpu", "00000"), _outputs(tmp_path / "cuda", "00000")
    assert cpu[1] == cuda[1] and cpu[2] == cuda[2]
    assert (cpu[0].astype(np.float32) * cuda[0].astype(np.float32)).sum(1).min() > 0.98


def _cli(*argv: str) -> int:
    from pipeline.app.cli import main

    return main(["--quiet", "embed", *argv])


def test_cli_loader_flags_as_a_user_types_them(toy_world: Path, tmp_path: Path, capsys) -> None:
    pool = str(toy_world / "pool")
    assert _cli("--pool", pool, "--root", str(tmp_path / "a"), "--model", "toy") == 0
    flags = ["--loader-workers", "2", "--decode", "cpu", "--precision", "fp32", "--device", "cpu"]
    assert _cli("--pool", pool, "--root", str(tmp_path / "b"), "--model", "toy", *flags) == 0
    assert "embedded 120 of 120 samples" in capsys.readouterr().out
    for shard in ("00000", "00001", "00002"):
        for suffix in (".npy", ".parquet"):
            a, b = (tmp_path / r / "embeddings" / "toy" / f"{shard}{suffix}" for r in "ab")
            assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--decode", "gpu", "--device", "cpu"], "--decode gpu needs a CUDA device"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
        (["--loader-workers", "-1"], "loader workers must be >= 0"),
        (["--executor", "dask", "--resources", "GPU=lots"], "resources must look like GPU=1"),
        (["--resources", "GPU=1"], "resources need a Dask executor"),
    ],
)
def test_cli_bad_loader_flags_are_one_line_errors(toy_world: Path, tmp_path: Path, capsys, flags, message) -> None:
    assert _cli("--pool", str(toy_world / "pool"), "--root", str(tmp_path), "--model", "toy", *flags) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("coarchive: error:")]
    assert len(errors) == 1 and message in errors[0]  # one line (an info line may name the model before it)
    assert not (tmp_path / "embeddings" / "toy" / "00000.npy").exists()


def test_cli_dask_cuda_without_dask_cuda_is_a_one_line_error(toy_world: Path, tmp_path: Path, capsys) -> None:
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-cuda is installed here")
    assert (
        _cli("--pool", str(toy_world / "pool"), "--root", str(tmp_path), "--model", "toy", "--executor", "dask-cuda")
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("coarchive: error:")]
    assert len(errors) == 1 and errors[0].startswith("coarchive: error: --executor dask-cuda needs dask-cuda")
