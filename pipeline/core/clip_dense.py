"""Dense CLIP features for open_clip ViTs: the MaskCLIP value path of the last block, one vector per patch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def interpolate_positions(pos: torch.Tensor, grid: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """A ViT positional embedding (1 + g0 * g0, width) resized to a patch grid `grid`: (1 + gh * gw, width)."""
    cls_pos, patch_pos = pos[:1], pos[1:]
    side = round(patch_pos.shape[0] ** 0.5)
    if side * side != patch_pos.shape[0]:
        raise ValueError(f"positional embedding of {patch_pos.shape[0]} patches is not a square grid")
    if (side, side) == tuple(grid):
        return pos
    patch_pos = patch_pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, width, g0, g0)
    patch_pos = F.interpolate(patch_pos.float(), size=grid, mode=mode, align_corners=False).to(pos.dtype)
    return torch.cat([cls_pos, patch_pos.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)], 0)


def resized_positional_embedding(visual: torch.nn.Module, grid: tuple[int, int]) -> torch.Tensor:
    """The ViT's positional embedding (1 + gh * gw, width), bicubically resized to a patch grid of `grid`."""
    return interpolate_positions(visual.positional_embedding, grid, "bicubic")


def vit_tokens_before_last_block(visual: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Run a ViT up to the input of its last block, at any input size: tokens (B, 1 + gh * gw, width) and grid."""
    x = visual.conv1(pixels)  # (B, width, gh, gw)
    grid = (x.shape[-2], x.shape[-1])
    x = x.flatten(2).transpose(1, 2)  # (B, gh * gw, width)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + resized_positional_embedding(visual, grid).to(x.dtype)
    x = visual.ln_pre(visual.patch_dropout(x))
    for block in visual.transformer.resblocks[:-1]:
        x = block(x)
    return x, grid


def value_tokens(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's view of one block on tokens (B, L, width): ln_1, value and output projections only (no q/k mixing,
    no residual, no MLP)."""
    attn = block.attn
    width = x.shape[-1]
    v = F.linear(block.ln_1(x), attn.in_proj_weight[2 * width :], attn.in_proj_bias[2 * width :])
    return attn.out_proj(v)


def value_path(visual: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MaskCLIP's last block: ln_1, value and output projections only (no q/k mixing, residual, MLP), ln_post, proj."""
    v = visual.ln_post(value_tokens(visual.transformer.resblocks[-1], x))
    return v @ visual.proj if visual.proj is not None else v


def token_path(visual: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The regular last block, then ln_post and proj on every token (the pooled embedding's own path)."""
    x = visual.ln_post(visual.transformer.resblocks[-1](x))
    return x @ visual.proj if visual.proj is not None else x


DENSE_PATHS = {"value": value_path, "tokens": token_path}


@torch.no_grad()
def clip_dense_features(visual: torch.nn.Module, pixels: torch.Tensor, path: str = "value") -> torch.Tensor:
    """L2-normalised patch embeddings (B, gh, gw, d) in the joint space, for normalised pixels (B, 3, H, W).

    `path` is "value" (MaskCLIP: the last block's value path) or "tokens" (the last block's regular output).
    """
    if path not in DENSE_PATHS:
        raise ValueError(f"unknown dense path {path!r}; choose from {sorted(DENSE_PATHS)}")
    x, (gh, gw) = vit_tokens_before_last_block(visual, pixels)
    patches = DENSE_PATHS[path](visual, x)[:, 1:]  # (B, gh * gw, d)
    return F.normalize(patches.float(), dim=-1).reshape(pixels.shape[0], gh, gw, -1)
