"""CaR's mask proposals: gradCAM of an open_clip ViT at the input of its last block, for all queries in one batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.clip_dense import interpolate_positions

# Where the CAM is taken: "paper" (METHODS: gradient and activation at the last block's input, image embedding
# proj(ln_post(mean patch token))) or "official" (the official code: at the output of the last block's ln_1, image
# embedding proj(mean(ln_post(patch tokens))))
CAM_STYLES = ("paper", "official")


def pixel_stats(visual: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The ViT's normalisation mean and std as (1, 3, 1, 1) tensors (OpenAI CLIP's unless its config says other)."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    mean = torch.tensor(cfg.get("mean", OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", OPENAI_DATASET_STD)).view(1, 3, 1, 1)
    return mean, std


def patch_size(visual: torch.nn.Module) -> int:
    """Side of the ViT's square patches."""
    kernel = visual.conv1.kernel_size
    return int(kernel[0] if isinstance(kernel, (tuple, list)) else kernel)


def cam_pixels(visual: torch.nn.Module, image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """An (H, W, 3) uint8 image at full resolution, each side rounded up to a multiple of the patch: (1, 3, H', W').

    The resize is PIL's bicubic on the uint8 image, as the official code's torchvision Resize on a PIL image.
    """
    from PIL import Image

    p = patch_size(visual)
    h, w = image.shape[:2]
    size = (math.ceil(h / p) * p, math.ceil(w / p) * p)
    image = np.array(image, dtype=np.uint8)
    if size != (h, w):
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div_(255)  # (1, 3, H', W')
    mean, std = pixel_stats(visual)
    dtype = visual.conv1.weight.dtype
    return ((x - mean) / std).to(device=device, dtype=dtype)


def block_with_attention(block: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One open_clip residual block on tokens (B, L, width): its output and its head-averaged attention (B, L, L)."""
    y = block.ln_1(x)
    out, weights = block.attn(y, y, y, need_weights=True, average_attn_weights=True)
    x = x + block.ls_1(out)
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x, weights


@dataclass
class ImageState:
    """What a CaR iteration reuses for one image: tokens entering the last block and the patch attention."""

    tokens: torch.Tensor  # (1, 1 + gh * gw, width), input of the last block
    grid: tuple[int, int]  # (gh, gw)
    attention: torch.Tensor  # (gh * gw, gh * gw) in the model dtype, mean patch-to-patch attention of the last layers


@torch.no_grad()
def encode_image_state(visual: torch.nn.Module, pixels: torch.Tensor, attention_layers: int = 8) -> ImageState:
    """Run the ViT once on (1, 3, H', W') pixels: last-block input tokens and the mean attention of its last
    `attention_layers` blocks (the last block's own included), patch tokens only."""
    if attention_layers < 1:
        raise ValueError(f"attention_layers must be at least 1, got {attention_layers}")
    x = visual.conv1(pixels)  # (1, width, gh, gw)
    grid = (int(x.shape[-2]), int(x.shape[-1]))
    x = x.flatten(2).transpose(1, 2)  # (1, gh * gw, width)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    # bilinear at other grids, as the official code (which also rounds the result to float16; coarchive does not)
    x = torch.cat([cls, x], 1) + interpolate_positions(visual.positional_embedding, grid, "bilinear").to(x.dtype)
    x = visual.ln_pre(x)
    blocks = list(visual.transformer.resblocks)
    first_kept = max(0, len(blocks) - attention_layers)
    maps = []
    for i, block in enumerate(blocks[:-1]):
        if i >= first_kept:
            x, weights = block_with_attention(block, x)
            maps.append(weights[0, 1:, 1:])  # (N, N)
        else:
            x = block(x)
    tokens = x
    _, last = block_with_attention(blocks[-1], tokens)
    maps.append(last[0, 1:, 1:])
    return ImageState(tokens, grid, torch.stack(maps).mean(0))


def pooled_embedding(visual: torch.nn.Module, tokens: torch.Tensor, style: str = "paper") -> torch.Tensor:
    """CaR's image embedding for the CAM from last-block outputs (B, L, width): proj(ln_post(mean patch token)), or
    proj(mean(ln_post(patch tokens))) for the "official" style."""
    if style == "official":
        x = visual.ln_post(tokens[:, 1:]).mean(1)  # (B, width)
    else:
        x = visual.ln_post(tokens[:, 1:].mean(1))  # (B, width)
    x = x @ visual.proj if visual.proj is not None else x
    return F.normalize(x, dim=-1)  # (B, d), the model dtype


def check_cam_style(style: str) -> str:
    """`style` if it is one of CAM_STYLES; ValueError naming the choices otherwise."""
    if style not in CAM_STYLES:
        raise ValueError(f"unknown cam_style {style!r}; choose from {', '.join(CAM_STYLES)}")
    return style


def _last_block_from_ln_1(block: torch.nn.Module, tokens: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The last block's output when its ln_1 output is `y` (B, L, width) and its input `tokens` (1, L, width)."""
    out, _ = block.attn(y, y, y, need_weights=False)
    x = tokens + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def gradcam(
    visual: torch.nn.Module,
    tokens: torch.Tensor,
    grid: tuple[int, int],
    queries: torch.Tensor,
    background: torch.Tensor,
    targets: list[int] | None = None,
    logit_scale: float = 100.0,
    style: str = "paper",
) -> torch.Tensor:
    """Raw gradCAMs (len(targets), gh, gw) of queries[targets], all in one batch.

    tokens (1, 1 + N, width) enter the last block; queries (Q, d) and background (B, d) are unit text embeddings.
    The target of query i is its softmax probability over queries + background of 100 cos(image, text); the CAM is
    ReLU(sum over channels of the patch-mean gradient times the activation). A sample of the batch only sees its own
    copy of the tokens, so one backward pass gives every query's gradient. The "official" style takes gradient and
    activation at the output of the last block's ln_1 and pools after ln_post (see CAM_STYLES).
    """
    check_cam_style(style)
    targets = list(range(len(queries))) if targets is None else list(targets)
    texts = torch.cat([queries, background]).to(device=tokens.device, dtype=tokens.dtype)  # (Q + B, d)
    block = visual.transformer.resblocks[-1]
    tokens = tokens.detach()
    with torch.enable_grad():
        if style == "official":
            activation = block.ln_1(tokens)  # (1, 1 + N, width)
            x = activation.detach().expand(len(targets), -1, -1).clone().requires_grad_(True)
            out = _last_block_from_ln_1(block, tokens, x)
        else:
            activation = tokens
            x = tokens.expand(len(targets), -1, -1).clone().requires_grad_(True)  # (T, 1 + N, width)
            out = block(x)
        embedding = pooled_embedding(visual, out, style)  # (T, d)
        probs = torch.softmax(logit_scale * embedding @ texts.T, dim=-1)  # (T, Q + B)
        chosen = probs[torch.arange(len(targets)), torch.tensor(targets)]  # (T,)
        (grad,) = torch.autograd.grad(chosen.sum(), x)
    weights = grad[:, 1:].mean(1)  # (T, width)
    patches = activation[0, 1:].detach()  # (N, width)
    cams = torch.relu(weights @ patches.T)  # (T, N)
    return cams.reshape(len(targets), *grid)


def query_cams(
    visual: torch.nn.Module,
    state: ImageState,
    queries: torch.Tensor,
    background: torch.Tensor,
    logit_scale: float = 100.0,
    style: str = "paper",
) -> torch.Tensor:
    """Min-max normalised gradCAMs (Q, gh, gw) of every query; a query whose CAM is all zero against queries plus
    background is recomputed against the queries alone (as the official code does)."""
    cams = gradcam(visual, state.tokens, state.grid, queries, background, None, logit_scale, style)
    empty = [i for i in range(len(queries)) if float(cams[i].max()) == 0.0]
    if empty and len(background):
        none = background[:0]
        cams[empty] = gradcam(visual, state.tokens, state.grid, queries, none, empty, logit_scale, style)
    return normalise_maps(cams)


def normalise_maps(maps: torch.Tensor) -> torch.Tensor:
    """Each map (..., h, w) shifted to a minimum of 0 and divided by its maximum (+1e-15, as the official code)."""
    flat = maps.flatten(-2)
    flat = flat - flat.min(-1, keepdim=True).values
    flat = flat / (flat.max(-1, keepdim=True).values + 1e-15)
    return flat.reshape(maps.shape)
