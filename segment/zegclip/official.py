"""Official ZegCLIP checkpoints (mmseg: backbone.*, text_encoder.*, decode_head.*) mapped onto coarchive's ZegCLIP
and an open_clip CLIP."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from segment.zegclip.model import ModelConfig, ZegCLIP

DROPPED = ("decode_head.loss_decode.",)  # the criterion's buffer (empty_weight): no weights
TEMPLATES = ("a photo of a {}",)  # the official code's single template (and its VOC embedding file's): no period
MMSEG_MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)  # the official configs' img_norm_cfg, pixels in [0, 1]
MMSEG_STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)


def use_quick_gelu(clip_model: torch.nn.Module) -> int:
    """Make every residual MLP of an open_clip CLIP use QuickGELU, OpenAI's activation and so the official
    backbone's (open_clip's plain 'ViT-B-16' config builds GELU); returns how many activations were replaced."""
    from open_clip.transformer import QuickGELU

    replaced = 0
    for module in clip_model.modules():
        if isinstance(module, torch.nn.Sequential) and isinstance(getattr(module, "gelu", None), torch.nn.GELU):
            module.gelu = QuickGELU()
            replaced += 1
    return replaced


def map_official(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Split an official state dict into {"visual": open_clip image tower keys, "text": open_clip CLIP text keys,
    "zegclip": our trainable keys}; ValueError for a key of no known module."""
    parts: dict[str, dict[str, torch.Tensor]] = {"visual": {}, "text": {}, "zegclip": {}}
    for key, tensor in state.items():
        if key.startswith(DROPPED):
            continue
        if key.startswith("backbone.prompt_") or key.startswith("backbone.deep_prompt_"):
            parts["zegclip"]["encoder." + key[len("backbone.") :]] = tensor
        elif key.startswith("backbone."):
            parts["visual"][key[len("backbone.") :]] = tensor
        elif key.startswith("text_encoder."):
            parts["text"][key[len("text_encoder.") :]] = tensor
        elif key.startswith("decode_head.q_proj."):
            parts["zegclip"]["head." + key[len("decode_head.") :]] = tensor
        elif match := re.match(r"decode_head\.decoder_1\.layers\.(\d+)\.(.+)$", key):
            parts["zegclip"][f"head.decoder.layers.{match[1]}.{match[2]}"] = tensor
        else:
            raise ValueError(f"official ZegCLIP key {key!r} belongs to no known module")
    return parts


def official_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict inside an official checkpoint file ({'state_dict': ...} or a bare dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official ZegCLIP checkpoint not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not any(k.startswith("decode_head.") for k in state):
        raise ValueError(f"{path} holds no ZegCLIP state dict (no decode_head.* keys)")
    return state


def _load_part(module: torch.nn.Module, part: dict[str, torch.Tensor], what: str) -> None:
    """Copy `part` into `module` (a positional embedding of another grid replaces the parameter); strict names."""
    own = module.state_dict()
    missing = sorted(set(own) - set(part) - {"attn_mask"})
    unexpected = sorted(set(part) - set(own))
    if missing or unexpected:
        raise ValueError(f"official {what} weights do not fit: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for name, tensor in part.items():
        if name == "positional_embedding" and tensor.shape != own[name].shape and what == "backbone":
            module.positional_embedding = torch.nn.Parameter(tensor.clone(), requires_grad=False)
        elif tensor.shape != own[name].shape:
            raise ValueError(f"official {what} {name}: shape {tuple(tensor.shape)}, ours {tuple(own[name].shape)}")
    module.load_state_dict({k: v for k, v in part.items() if k in own}, strict=False)


def load_official(state: dict[str, torch.Tensor], clip_model: torch.nn.Module, load_text: bool = True) -> ZegCLIP:
    """Fill an open_clip CLIP (image tower, and text tower unless `load_text` is False) and a new ZegCLIP built on it
    (prompt count read from the checkpoint) from an official state dict."""
    parts = map_official(state)
    prompts = parts["zegclip"].get("encoder.prompt_embeddings")
    if prompts is None:
        raise ValueError("the official state dict has no backbone.prompt_embeddings")
    _load_part(clip_model.visual, parts["visual"], "backbone")
    if load_text and parts["text"]:
        text_module_keys = {k for k in clip_model.state_dict() if not k.startswith("visual.") and k != "logit_scale"}
        text_module_keys |= {k for k in ("logit_scale",) if k in parts["text"]}
        missing = sorted(text_module_keys - set(parts["text"]) - {"attn_mask"})
        if missing:
            raise ValueError(f"official text_encoder weights lack {missing[:4]}")
        clip_model.load_state_dict(parts["text"], strict=False)
    layers = len({k.split(".")[3] for k in parts["zegclip"] if k.startswith("head.decoder.layers.")})
    config = ModelConfig(num_tokens=int(prompts.shape[1]), decoder_layers=max(layers, 1))
    model = ZegCLIP(clip_model.visual, config)
    model.load_trainable_state_dict(parts["zegclip"])
    return model


def import_official(
    checkpoint: Path | str,
    out: Path | str,
    classes: Sequence[str],
    seen: Sequence[str] | None = None,
    model: str = "ViT-B-16",
    num_tokens: int | None = None,
) -> Path:
    """Write a coarchive ZegCLIP checkpoint folder (with the CLIP it fills) from an official checkpoint file."""
    import open_clip

    from pipeline.core.io import atomic_path
    from pipeline.core.models import LoadedModel, ModelRef, register_model_configs
    from segment.zegclip.checkpoint import POSITIONS, CheckpointMeta, save_checkpoint
    from segment.zegclip.train import SEEN_BIAS
    from segment.zegclip.vocabulary import Vocabulary, embed_texts

    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("--classes must name the checkpoint's classes in order")
    unknown = [c for c in seen or [] if c not in classes]
    if unknown:
        raise ValueError(f"seen classes {unknown} are not among the classes")
    state = official_state_dict(checkpoint)
    register_model_configs()
    if model not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {model!r}")
    clip_model = open_clip.create_model(model, pretrained=None)
    use_quick_gelu(clip_model)  # before the text embeddings; the meta's quick_gelu redoes it at every load
    zeg = load_official(state, clip_model)
    if num_tokens is not None and num_tokens != zeg.config.num_tokens:
        raise ValueError(f"the checkpoint has {zeg.config.num_tokens} prompt tokens, not {num_tokens}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clip_path = out / "clip.pt"
    with atomic_path(clip_path) as tmp:
        torch.save(clip_model.state_dict(), tmp)
    ref = ModelRef(model, str(clip_path.resolve()))
    loaded = LoadedModel(ref, clip_model.eval(), None, open_clip.get_tokenizer(model), torch.device("cpu"))
    vocab = Vocabulary(classes, embed_texts(loaded, classes, TEMPLATES))
    trained = list(seen) if seen else classes
    bias = SEEN_BIAS if seen else 0.0
    grid = round((clip_model.visual.positional_embedding.shape[0] - 1) ** 0.5)
    crop = grid * zeg.encoder.patch_size  # the official input_resolution: 32 x 16 = 512 for ViT-B/16
    extra = {
        "official": str(checkpoint),
        "quick_gelu": True,  # OpenAI's activation at every load (see use_quick_gelu)
        "templates": list(TEMPLATES),
        "pixel_mean": MMSEG_MEAN,
        "pixel_std": MMSEG_STD,
    }
    meta = CheckpointMeta(str(ref), zeg.config, {"crop_size": crop}, trained, [], bias, 0, extra)
    with atomic_path(out / POSITIONS) as tmp:
        torch.save(clip_model.visual.positional_embedding.detach().clone(), tmp)
    save_checkpoint(out, zeg, vocab, meta)
    return out
