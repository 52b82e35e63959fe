"""Official ZegCLIP checkpoints: a random state dict in the official key layout lands where it should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segment.zegclip.official import import_official, load_official, map_official


def official_layout(clip_model, tokens: int = 10, dim: int | None = None, layers: int = 3, grid: int = 32) -> dict:
    """A random state dict named and shaped like the official mmseg ZegCLIP (VPTCLIPVisionTransformer backbone,
    CLIPTextEncoder, ATMSingleHeadSeg with one TPN_Decoder), written from the official module structure."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, tensor in clip_model.state_dict().items():  # OpenAI CLIP names, as the official towers use
        if key.startswith("visual."):
            state["backbone." + key[len("visual.") :]] = torch.randn(tensor.shape, generator=gen)
        elif key != "logit_scale":
            state["text_encoder." + key] = torch.randn(tensor.shape, generator=gen)
    width = clip_model.visual.conv1.out_channels
    depth = len(clip_model.visual.transformer.resblocks)
    dim = dim or clip_model.text_projection.shape[1]
    state["backbone.positional_embedding"] = torch.randn(1 + grid * grid, width, generator=gen)  # 512 px input
    shapes = {
        "backbone.prompt_embeddings": (1, tokens, width),
        "backbone.deep_prompt_embeddings": (depth - 1, tokens, width),
        "backbone.prompt_proj.weight": (width, width),
        "backbone.prompt_proj.bias": (width,),
        "backbone.prompt_norm.weight": (width,),
        "backbone.prompt_norm.bias": (width,),
        "decode_head.q_proj.weight": (dim, 2 * dim),
        "decode_head.q_proj.bias": (dim,),
        "decode_head.loss_decode.criterion.empty_weight": (16,),
    }
    for i in range(layers):
        p = f"decode_head.decoder_1.layers.{i}."
        shapes |= {
            p + "self_attn.in_proj_weight": (3 * dim, dim),
            p + "self_attn.in_proj_bias": (3 * dim,),
            p + "self_attn.out_proj.weight": (dim, dim),
            p + "self_attn.out_proj.bias": (dim,),
            **{p + f"multihead_attn.{n}.weight": (dim, dim) for n in "qkv"},
            **{p + f"multihead_attn.{n}.bias": (dim,) for n in "qkv"},
            p + "multihead_attn.proj.weight": (dim, dim),
            p + "multihead_attn.proj.bias": (dim,),
            p + "linear1.weight": (4 * dim, dim),
            p + "linear1.bias": (4 * dim,),
            p + "linear2.weight": (dim, 4 * dim),
            p + "linear2.bias": (dim,),
            **{p + f"norm{n}.{w}": (dim,) for n in (1, 2, 3) for w in ("weight", "bias")},
        }
    state |= {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    return state


def test_vit_b16_official_layout_lands_in_place() -> None:
    import open_clip

    clip_model = open_clip.create_model("ViT-B-16", pretrained=None)
    state = official_layout(clip_model)
    model = load_official(state, clip_model)
    assert model.config.num_tokens == 10
    assert sum(p.numel() for p in model.trainable_parameters().values()) == 13_821_184
    checks = {
        "decode_head.decoder_1.layers.2.multihead_attn.k.weight": model.head.decoder.layers[2].multihead_attn.k.weight,
        "decode_head.decoder_1.layers.0.self_attn.in_proj_weight": model.head.decoder.layers[
            0
        ].self_attn.in_proj_weight,
        "decode_head.decoder_1.layers.1.norm3.bias": model.head.decoder.layers[1].norm3.bias,
        "decode_head.q_proj.weight": model.head.q_proj.weight,
        "backbone.deep_prompt_embeddings": model.encoder.deep_prompt_embeddings,
        "backbone.prompt_proj.weight": model.encoder.prompt_proj.weight,
        "backbone.prompt_norm.weight": model.encoder.prompt_norm.weight,
        "backbone.positional_embedding": clip_model.visual.positional_embedding,
        "backbone.transformer.resblocks.5.mlp.c_fc.weight": clip_model.visual.transformer.resblocks[5].mlp.c_fc.weight,
        "backbone.proj": clip_model.visual.proj,
        "text_encoder.token_embedding.weight": clip_model.token_embedding.weight,
        "text_encoder.transformer.resblocks.11.attn.in_proj_weight": clip_model.transformer.resblocks[
            11
        ].attn.in_proj_weight,
        "text_encoder.text_projection": clip_model.text_projection,
    }
    for key, tensor in checks.items():
        torch.testing.assert_close(tensor.detach(), state[key], rtol=0, atol=0, msg=key)
    assert model.encoder.visual is clip_model.visual and clip_model.visual.positional_embedding.shape == (1025, 768)
    logits = model.eval()(torch.randn(1, 3, 64, 64), torch.nn.functional.normalize(torch.randn(2, 512), dim=-1))
    assert logits.shape == (1, 2, 64, 64)


def test_unknown_official_key_is_an_error(toy_model) -> None:
    state = official_layout(toy_model.model, tokens=3, grid=12)
    with pytest.raises(ValueError, match=r"decode_head\.input_proj_1"):
        map_official({**state, "decode_head.input_proj_1.weight": torch.zeros(1)})
    del state["decode_head.decoder_1.layers.0.linear1.weight"]
    with pytest.raises(ValueError, match="linear1"):
        load_official(state, _fresh_toy())


def _fresh_toy():
    import open_clip

    from pipeline.core.models import register_model_configs

    register_model_configs()
    return open_clip.create_model("coarchive-toy-vit", pretrained=None)


def test_import_official_writes_a_usable_checkpoint(tmp_path) -> None:
    from segment.segmenter import create_segmenter

    state = official_layout(_fresh_toy(), tokens=3, grid=12)
    path = tmp_path / "iter_20000.pth"
    torch.save({"meta": {}, "state_dict": state}, path)
    classes = ["grass", "sky", "circle", "star"]
    folder = import_official(path, tmp_path / "ours", classes, seen=["grass", "sky"], model="coarchive-toy-vit")
    segmenter = create_segmenter("zegclip", checkpoint=folder, device="cpu")
    torch.testing.assert_close(segmenter.model.encoder.prompt_embeddings.detach(), state["backbone.prompt_embeddings"])
    assert segmenter.model.encoder.visual.positional_embedding.shape == (145, 128)
    assert segmenter.seen_bias == pytest.approx(0.1) and segmenter.biased == {"grass", "sky"}
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    result = segmenter.predict(image, classes)
    assert result.scores.shape == (4, 70, 90) and torch.isfinite(result.scores).all()
    with pytest.raises(FileNotFoundError):
        import_official(tmp_path / "missing.pth", tmp_path / "x", classes)
    with pytest.raises(ValueError, match="seen classes"):
        import_official(path, tmp_path / "y", classes, seen=["unicorn"], model="coarchive-toy-vit")
