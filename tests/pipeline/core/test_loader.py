"""The streaming shard loader: tar order kept, batches cut as the whole-shard path cut them, memory bounded."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.loader import ShardLoader, plain_jpeg_size, prepare_chunk
from pipeline.core.shard_reader import decode_image, read_shard
from tests.pipeline.shard_files import encode, write_tar

SIZE = 24


def _transform(image: Image.Image) -> torch.Tensor:
    """A small stand-in for a CLIP's eval transform: (3, 24, 24) float32."""
    pixels = np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def _shard(path: Path, count: int, bad_every: int = 0) -> Path:
    rng = np.random.default_rng(count)
    members = []
    for i in range(count):
        data = encode(Image.fromarray(rng.integers(0, 255, (20 + i % 7, 30, 3), dtype=np.uint8)), "JPEG")
        if bad_every and i % bad_every == 1:
            data = b"not an image"
        members.append((f"{i:09d}.jpg", data))
    return write_tar(path, members)


def _collect(loader: ShardLoader, tar: Path) -> tuple[list, Counter, list[int]]:
    problems, bad = Counter(), Counter()
    batches, ahead = [], []
    for batch in loader.batches(str(tar), problems, bad):
        ahead.append(loader.stats.read - loader.stats.yielded)
        batches.append(batch)
    return batches, problems + bad, ahead


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_keep_tar_order_and_the_whole_shard_cut(tmp_path: Path, workers: int) -> None:
    tar = _shard(tmp_path / "00000.tar", 90, bad_every=10)
    loader = ShardLoader(_transform, batch_size=16, workers=workers, threads=2, chunk=8, prefetch=2)
    batches, problems, _ = _collect(loader, tar)
    good = [s for s in read_shard(str(tar)).samples if decode_image(s.data)[0] is not None]
    assert [len(b) for b in batches] == [16] * 5 + [1] and problems == Counter(
        {"not a decodable image": 9, "missing parquet": 1}
    )
    assert [s.key for b in batches for s in b.samples] == [s.key for s in good]
    assert [s.row for b in batches for s in b.samples] == [s.row for s in good]
    expected = torch.stack([_transform(Image.fromarray(decode_image(s.data)[0])) for s in good])
    assert torch.equal(torch.cat([b.pixels for b in batches]), expected)  # the bytes the model saw before
    assert [size for b in batches for size in b.sizes] == [(30, 20 + s.row % 7) for s in good]
    assert loader.stats.read == 90 and loader.stats.yielded == 81


@pytest.mark.parametrize("workers", [0, 2])
def test_decoded_pixels_in_flight_are_bounded(tmp_path: Path, workers: int) -> None:
    tar = _shard(tmp_path / "00000.tar", 400)
    loader = ShardLoader(_transform, batch_size=16, workers=workers, threads=2, chunk=8, prefetch=2)
    batches, _, ahead = _collect(loader, tar)
    assert sum(len(b) for b in batches) == 400
    bound = loader.max_chunks_in_flight * loader.chunk + loader.batch_size  # jobs in flight + one batch being cut
    assert loader.stats.peak_chunks_in_flight <= loader.max_chunks_in_flight == 4
    assert max(ahead) <= loader.stats.peak_ahead <= bound == 48  # never the shard's 400 images at once
    assert all(b.pixels.shape[0] <= 16 for b in batches)


def test_a_consumer_that_stops_early_cancels_the_rest(tmp_path: Path) -> None:
    tar = _shard(tmp_path / "00000.tar", 200)
    loader = ShardLoader(_transform, batch_size=8, workers=2, chunk=8, prefetch=1)
    stream = loader.batches(str(tar), Counter(), Counter())
    assert len(next(stream)) == 8
    stream.close()
    assert loader.stats.read <= 3 * 8  # two jobs in flight and the one consumed: the tar was not read on


def test_jpegs_for_the_device_and_everything_else_on_the_cpu() -> None:
    rgb = Image.new("RGB", (40, 30), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    cmyk = encode(Image.new("CMYK", (8, 8)), "JPEG")
    datas = [encode(rgb, "JPEG"), encode(rgb.convert("L"), "JPEG"), encode(rgb, "JPEG", exif=exif)]
    datas += [cmyk, encode(rgb, "PNG"), b"", b"\xff\xd8\xff not really"]
    assert [plain_jpeg_size(d) for d in datas] == [(40, 30), (40, 30), None, None, None, None, None]
    out = prepare_chunk(datas, _transform, jpeg_to_device=True)
    assert out.on_device == [True, True, False, False, False, False, False]
    assert out.reasons == [None, None, None, None, None, "empty image", "not a decodable image"]
    assert out.sizes[:5] == [(40, 30), (40, 30), (30, 40), (8, 8), (40, 30)]  # the EXIF turn applied on the CPU
    assert out.pixels.shape == (3, 3, SIZE, SIZE) and out.jpegs == datas[:2]
    assert not any(prepare_chunk(datas, _transform, jpeg_to_device=False).on_device)


def _in_a_daemon(tar: str, queue) -> None:
    loader = ShardLoader(_transform, batch_size=16, workers=2, chunk=8)
    queue.put(sum(len(b) for b in loader.batches(tar, Counter(), Counter())))


def test_a_daemonic_process_decodes_with_threads(tmp_path: Path) -> None:
    """Daemonic processes (Dask's default workers) may not start processes: the loader uses threads there."""
    tar = _shard(tmp_path / "00000.tar", 40)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_in_a_daemon, args=(str(tar), queue), daemon=True)
    process.start()
    assert queue.get(timeout=60) == 40
    process.join(10)
    assert process.exitcode == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ShardLoader(_transform, batch_size=0)
    with pytest.raises(ValueError, match="loader workers"):
        ShardLoader(_transform, batch_size=4, workers=-1)
