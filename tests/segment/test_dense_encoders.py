"""Dense encoders: shapes, L2 norm, other input sizes, local checkpoints only, and parity with MaskCLIP features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.clip_dense import clip_dense_features
from pipeline.toy.quality import normalise_pixels
from segment.dense_encoders import (
    ClipDenseEncoder,
    DenseEncoder,
    TimmDenseEncoder,
    centre_square,
    create_dense_encoder,
)

TINY = {"depth": 2, "embed_dim": 48, "num_heads": 2}  # a random-init ViT small enough for CI


def images(n: int, h: int = 96, w: int = 96, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_vit() -> TimmDenseEncoder:
    torch.manual_seed(0)
    return TimmDenseEncoder("vit_tiny_patch16_224", **TINY)


def test_timm_encoder_shapes_norm_and_other_sizes(tiny_vit: TimmDenseEncoder) -> None:
    assert isinstance(tiny_vit, DenseEncoder)
    assert (tiny_vit.name, tiny_vit.input_size, tiny_vit.dim) == ("timm:vit_tiny_patch16_224", 224, 48)
    feats = tiny_vit.encode(images(2, 100, 140))  # non-square: short side to 224, centre crop
    assert feats.shape == (2, 14, 14, 48) and feats.dtype == torch.float32
    assert torch.allclose(feats.norm(dim=-1), torch.ones(2, 14, 14), atol=1e-5)
    small = TimmDenseEncoder("vit_tiny_patch16_224", input_size=96, **TINY)
    small.model.load_state_dict(tiny_vit.model.state_dict())
    out = small.encode(np.stack(images(3)))  # positional embeddings interpolated to a 6 x 6 grid
    assert out.shape == (3, 6, 6, 48)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3, 6, 6), atol=1e-5)


def test_timm_encoder_drops_every_prefix_token() -> None:
    enc = TimmDenseEncoder("deit_tiny_distilled_patch16_224", input_size=64, **TINY)
    assert enc.model.num_prefix_tokens == 2
    assert enc.encode(images(1, 64, 64)).shape == (1, 4, 4, 48)


def test_timm_checkpoint_is_local_only(tiny_vit: TimmDenseEncoder, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        TimmDenseEncoder("vit_tiny_patch16_224", checkpoint=tmp_path / "missing.pth", **TINY)
    ckpt = tmp_path / "vit.pth"
    torch.save({"model": tiny_vit.model.state_dict()}, ckpt)  # an official-style wrapper
    loaded = create_dense_encoder("timm:vit_tiny_patch16_224", checkpoint=ckpt, **TINY)
    batch = images(2, seed=1)
    assert torch.allclose(loaded.encode(batch), tiny_vit.encode(batch), atol=1e-5)
    torch.save({"unrelated": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="lacks"):
        TimmDenseEncoder("vit_tiny_patch16_224", checkpoint=tmp_path / "bad.pth", **TINY)


def test_clip_encoder_matches_maskclip_features(toy_model) -> None:
    enc = ClipDenseEncoder(toy_model)
    assert (enc.input_size, enc.dim, enc.name) == (96, 128, "clip:toy")
    batch = np.stack(images(3, seed=2))
    feats = enc.encode(batch)
    expected = clip_dense_features(toy_model.model.visual, normalise_pixels(toy_model, batch))
    assert feats.shape == (3, 12, 12, 128) and torch.allclose(feats, expected, atol=1e-6)
    wide = images(1, 96, 130, seed=3)[0]  # centre-cropped to its middle 96 x 96
    assert torch.allclose(enc.encode([wide]), enc.encode([centre_square(wide)]), atol=1e-6)
    mixed = enc.encode([batch[0], images(1, 120, 120)[0]])  # different sizes in one batch
    assert mixed.shape == (2, 12, 12, 128)
    assert create_dense_encoder("clip-tokens", clip=toy_model).path == "tokens"
    pen = create_dense_encoder("clip-penultimate", clip=toy_model)
    assert pen.name == "clip-penultimate:toy" and pen.dim == 128
    pen_feats = pen.encode(batch)
    assert pen_feats.shape == (3, 12, 12, 128) and torch.allclose(pen_feats.norm(dim=-1), torch.ones(3, 12, 12))
    assert not torch.allclose(pen_feats, feats, atol=1e-2)


def test_bad_specs_and_inputs_raise(toy_model) -> None:
    with pytest.raises(ValueError, match="unknown dense encoder"):
        create_dense_encoder("dino")
    with pytest.raises(ValueError, match="needs a loaded CLIP"):
        create_dense_encoder("clip")
    with pytest.raises(ValueError, match="unknown timm model"):
        create_dense_encoder("timm:no_such_vit")
    enc = ClipDenseEncoder(toy_model)
    with pytest.raises(ValueError, match="uint8"):
        enc.encode([np.zeros((96, 96, 3), np.float32)])
    with pytest.raises(ValueError, match="no images"):
        enc.encode([])
