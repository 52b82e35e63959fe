"""The reimplemented ViT front end matches open_clip, and dense features have the stated shape at any size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.core.clip_dense import clip_dense_features, resized_positional_embedding, vit_tokens_before_last_block


def test_front_end_plus_last_block_reproduces_encode_image(toy_model) -> None:
    visual = toy_model.model.visual
    pixels = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        x, grid = vit_tokens_before_last_block(visual, pixels)
        pooled, _ = visual._pool(visual.transformer.resblocks[-1](x))
        pooled = pooled @ visual.proj
        assert grid == (12, 12)
        assert torch.allclose(pooled, visual(pixels), atol=1e-5)


def test_dense_features_shape_and_norm_at_other_sizes(toy_model) -> None:
    visual = toy_model.model.visual
    feats = clip_dense_features(visual, torch.randn(1, 3, 128, 160))
    assert feats.shape == (1, 16, 20, 128)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(1, 16, 20), atol=1e-5)
    assert resized_positional_embedding(visual, (12, 12)) is visual.positional_embedding


def test_value_path_on_a_random_init_real_architecture() -> None:
    import open_clip

    model = open_clip.create_model("ViT-B-16")
    feats = clip_dense_features(model.visual.eval(), F.pad(torch.randn(1, 3, 224, 224), (0, 16, 0, 0)))
    assert feats.shape == (1, 14, 15, 512)
