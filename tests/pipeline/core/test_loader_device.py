"""The device side of the loader: batched JPEG decode and preprocessing against open_clip's PIL transform.

The same functions run on CUDA (nvJPEG) and on the CPU (libjpeg); the CPU twin runs everywhere, the CUDA case
where a GPU is present.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.loader import BatchBuilder, prepare_chunk
from pipeline.core.loader_device import PixelSpec, batch_to_device, decode_jpegs, preprocess_tensors
from pipeline.core.shard_reader import RawSample

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _jpeg(width: int, height: int, seed: int, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)  # photo-like: smooth
    image = Image.fromarray(smooth).resize((width, height), Image.BILINEAR).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.mark.parametrize("device", DEVICES)
def test_device_preprocessing_matches_the_pil_transform(toy_model, device: str) -> None:
    spec = PixelSpec.of(toy_model.model.visual, toy_model.image_size)
    assert spec is not None and spec.size == 96
    jpegs = [_jpeg(256, 256, 0), _jpeg(256, 256, 1), _jpeg(300, 180, 2), _jpeg(120, 200, 3, "L")]
    decoded = decode_jpegs(jpegs, torch.device(device))
    pixels = preprocess_tensors(decoded, spec).cpu()  # (4, 3, 96, 96)
    reference = torch.stack([toy_model.preprocess(Image.open(io.BytesIO(j))) for j in jpegs])
    difference = (pixels - reference).abs()
    assert pixels.shape == reference.shape and float(difference.mean()) < 0.02 and float(difference.max()) < 0.6
    with torch.no_grad():
        features = torch.nn.functional.normalize(toy_model.model.encode_image(torch.cat([pixels, reference])), dim=-1)
    assert float((features[:4] * features[4:]).sum(-1).min()) > 0.99  # what the index sees: the same vectors


@pytest.mark.parametrize("device", DEVICES)
def test_a_mixed_batch_lands_in_order_and_a_broken_jpeg_is_dropped(toy_model, device: str) -> None:
    spec = PixelSpec.of(toy_model.model.visual, toy_model.image_size)
    good, png = _jpeg(128, 128, 4), io.BytesIO()
    Image.open(io.BytesIO(good)).save(png, format="PNG")
    broken = good[: len(good) // 2]  # the header parses, the data stops half way
    datas = [good, png.getvalue(), broken, _jpeg(64, 96, 5)]
    out = prepare_chunk(datas, toy_model.preprocess, jpeg_to_device=True)
    assert out.on_device == [True, False, True, True] and out.reasons == [None] * 4
    builder = BatchBuilder(8)
    builder.add([RawSample(i, f"{i}", None, {}) for i in range(4)], out, problems={})
    batch = builder.take()
    assert batch.cpu_rows == [1] and batch.jpeg_rows == [0, 2, 3]
    pixels, dropped = batch_to_device(batch, torch.device(device), spec, toy_model.preprocess)
    assert dropped == {2: "not a decodable image"} and pixels.shape == (3, 3, 96, 96)
    assert str(pixels.device).startswith(device)
    assert torch.allclose(pixels[0].cpu(), pixels[1].cpu(), atol=0.6)  # the same picture, by JPEG and by PNG
    assert torch.equal(pixels[1].cpu(), batch.pixels[0])  # the CPU row as the worker made it


def test_a_transform_that_is_not_resize_and_crop_has_no_device_spec(toy_model) -> None:
    visual = torch.nn.Module()
    visual.preprocess_cfg = {"resize_mode": "squash", "size": 96}
    assert PixelSpec.of(visual, 96) is None
    assert PixelSpec.of(toy_model.model.visual, 96).mean == tuple(toy_model.model.visual.preprocess_cfg["mean"])
