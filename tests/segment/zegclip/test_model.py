"""ZegCLIP's network: the official trainable parameter count, frozen tower, shapes, prompts at every block."""

from __future__ import annotations

import pytest
import torch

from segment.zegclip.model import ModelConfig, ZegCLIP, count_trainable


@pytest.fixture(scope="module")
def vit_b16():
    import open_clip

    return open_clip.create_model("ViT-B-16", pretrained=None)


@pytest.mark.parametrize(("tokens", "expected"), [(10, 13_821_184), (100, 14_650_624)])
def test_official_trainable_parameter_count(vit_b16, tokens: int, expected: int) -> None:
    model = ZegCLIP(vit_b16.visual, ModelConfig(num_tokens=tokens))
    assert count_trainable(model) == expected
    assert all(not p.requires_grad for p in model.encoder.visual.parameters())
    trainable = set(model.trainable_parameters())
    assert {"encoder.prompt_embeddings", "encoder.deep_prompt_embeddings", "encoder.prompt_proj.weight"} <= trainable
    assert model.encoder.deep_prompt_embeddings.shape == (11, tokens, 768)
    without = ZegCLIP(vit_b16.visual, ModelConfig(num_tokens=tokens, self_attention=False))
    assert count_trainable(without) == expected - 3 * (4 * 512 * 512 + 4 * 512)  # the unused self-attention


def test_forward_shapes_any_size(toy_model) -> None:
    torch.manual_seed(0)
    model = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=3)).eval()
    text = torch.nn.functional.normalize(torch.randn(5, model.dim), dim=-1)
    for size in [(96, 96), (64, 128), (40, 24)]:
        logits = model(torch.randn(2, 3, *size), text)
        assert logits.shape == (2, 5, *size) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="text embeddings"):
        model(torch.randn(1, 3, 96, 96), torch.randn(5, model.dim + 1))


def test_gradients_reach_prompts_of_every_layer(toy_model) -> None:
    torch.manual_seed(0)
    model = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=2))
    text = torch.nn.functional.normalize(torch.randn(3, model.dim), dim=-1)
    model(torch.randn(1, 3, 96, 96), text).sum().backward()
    deep = model.encoder.deep_prompt_embeddings.grad
    assert deep is not None and (deep.abs().flatten(1).sum(1) > 0).all()  # every deep layer's prompts matter
    assert model.encoder.prompt_embeddings.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.visual.parameters())


def test_prompts_change_the_output(toy_model) -> None:
    torch.manual_seed(0)
    model = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=2)).eval()
    text = torch.nn.functional.normalize(torch.randn(3, model.dim), dim=-1)
    pixels = torch.randn(1, 3, 96, 96)
    before = model(pixels, text)
    with torch.no_grad():
        model.encoder.deep_prompt_embeddings[-1] += 1.0
    assert not torch.allclose(before, model(pixels, text))


def test_value_path_option_changes_only_patches(toy_model) -> None:
    torch.manual_seed(0)
    regular = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=2)).eval()
    torch.manual_seed(0)
    value = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=2, value_path=True)).eval()
    pixels = torch.randn(1, 3, 96, 96)
    (p1, g1), (p2, g2) = regular.encoder(pixels), value.encoder(pixels)
    torch.testing.assert_close(g1, g2)
    assert not torch.allclose(p1, p2) and p2.shape == p1.shape == (1, 128, 12, 12)
