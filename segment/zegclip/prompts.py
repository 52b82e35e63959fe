"""Deep prompt tuning (DPT) around a frozen open_clip ViT: learnable tokens replaced at every block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.clip_dense import interpolate_positions, value_tokens


def block_with_drop_path(block: nn.Module, x: torch.Tensor, drop: nn.Module, batch_first: bool) -> torch.Tensor:
    """An open_clip residual block on tokens in its own layout, with stochastic depth (timm's DropPath, one draw per
    image) on both residual branches."""

    def dropped(branch: torch.Tensor) -> torch.Tensor:
        return drop(branch) if batch_first else drop(branch.transpose(0, 1)).transpose(0, 1)

    x = x + dropped(block.ls_1(block.attention(q_x=block.ln_1(x))))
    return x + dropped(block.ls_2(block.mlp(block.ln_2(x))))


class PromptedViT(nn.Module):
    """A frozen open_clip VisionTransformer with deep prompt tuning (ZegCLIP / VPT-deep).

    Trainable: `prompt_embeddings` (1, n, width) inserted after the CLS token before block 0,
    `deep_prompt_embeddings` (layers - 1, n, width) replacing them before every later block, the shared
    `prompt_proj` Linear(width, width) (+ dropout), and `prompt_norm`, a LayerNorm applied before ln_post
    (official code; not in the paper). Parameter names match the official checkpoints' `backbone.prompt_*`.
    """

    def __init__(
        self,
        visual: nn.Module,
        num_tokens: int = 10,
        dropout: float = 0.1,
        double_cls: bool = True,
        pos_mode: str = "bilinear",
        value_path: bool = False,
    ) -> None:
        super().__init__()
        for name in ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "ln_post"):
            if not hasattr(visual, name):
                raise ValueError(f"ZegCLIP needs an open_clip ViT image tower; {type(visual).__name__} has no {name}")
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be positive, got {num_tokens}")
        self.visual = visual.requires_grad_(False)
        self.num_tokens = num_tokens
        self.double_cls = double_cls  # official: the CLS embedding is added again with its position
        self.pos_mode = pos_mode
        self.value_path = value_path  # not ZegCLIP: patches from MaskCLIP's value path of the last block
        width = int(visual.conv1.out_channels)
        layers = len(visual.transformer.resblocks)
        patch = int(visual.conv1.kernel_size[0])
        self.width, self.patch_size, self.num_layers = width, patch, layers
        bound = math.sqrt(6.0 / float(3 * patch * patch + width))  # xavier-uniform bound of the official code
        self.prompt_embeddings = nn.Parameter(torch.empty(1, num_tokens, width).uniform_(-bound, bound))
        self.deep_prompt_embeddings = nn.Parameter(torch.empty(layers - 1, num_tokens, width).uniform_(-bound, bound))
        self.prompt_proj = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.prompt_proj.weight, a=0, mode="fan_out")
        self.prompt_norm = nn.LayerNorm(width, eps=1e-6)
        self.prompt_dropout = nn.Dropout(dropout)
        self.drop_paths: list[nn.Module] = []  # per block, set by set_drop_path; acts in training only

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth on the frozen tower's blocks while training, rising linearly from 0 to `rate`
        (official: 0.1 over the 12 blocks); 0 turns it off."""
        from timm.layers import DropPath

        if not 0 <= rate < 1:
            raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
        rates = torch.linspace(0, rate, self.num_layers).tolist()
        self.drop_paths = [DropPath(r) for r in rates] if rate > 0 else []

    @property
    def output_dim(self) -> int:
        """Dimension of the joint image-text space (the projection's output)."""
        proj = self.visual.proj
        return int(proj.shape[1]) if proj is not None else self.width

    def train(self, mode: bool = True) -> PromptedViT:
        """Train mode for the prompt modules only; the frozen tower always stays in eval mode."""
        super().train(mode)
        self.visual.eval()
        return self

    def _prompts(self, table: torch.Tensor, batch: int) -> torch.Tensor:
        """(n, width) prompt table -> projected, dropped-out prompts (B, n, width)."""
        return self.prompt_dropout(self.prompt_proj(table)).expand(batch, -1, -1)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised pixels (B, 3, H, W) -> patch embeddings (B, d, gh, gw) and global embeddings (B, d), both unit."""
        visual = self.visual
        x = visual.conv1(pixels)  # (B, width, gh, gw)
        batch, _, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, gh * gw, width)
        cls = visual.class_embedding.to(x.dtype)
        x = torch.cat([cls.expand(batch, 1, -1), x], 1)  # (B, 1 + gh * gw, width)
        pos = interpolate_positions(visual.positional_embedding, (gh, gw), self.pos_mode).to(x.dtype)
        if self.double_cls:
            pos = torch.cat([pos[:1] + cls, pos[1:]], 0)
        x = visual.ln_pre(x + pos)
        n = self.num_tokens
        x = torch.cat([x[:, :1], self._prompts(self.prompt_embeddings[0], batch).to(x.dtype), x[:, 1:]], 1)
        first = not getattr(visual.transformer, "batch_first", True)
        blocks = visual.transformer.resblocks
        for i, block in enumerate(blocks):
            if i > 0:
                deep = self._prompts(self.deep_prompt_embeddings[i - 1], batch).to(x.dtype)
                x = torch.cat([x[:, :1], deep, x[:, 1 + n :]], 1)
            if i == len(blocks) - 1 and self.value_path:
                values = value_tokens(block, x)  # (B, 1 + n + gh * gw, width), MaskCLIP's last block
            drop = self.drop_paths[i] if self.drop_paths and self.training else None
            tokens = x.transpose(0, 1) if first else x  # the tower's own layout
            tokens = block(tokens) if drop is None else block_with_drop_path(block, tokens, drop, not first)
            x = tokens.transpose(0, 1) if first else tokens  # (B, 1 + n + gh * gw, width)
        if self.value_path:
            x = torch.cat([x[:, : 1 + n], values[:, 1 + n :]], 1)  # global from the regular path, patches from values
        x = visual.ln_post(self.prompt_norm(x))
        if visual.proj is not None:
            x = x @ visual.proj  # (B, 1 + n + gh * gw, d)
        glob = F.normalize(x[:, 0], dim=-1)  # (B, d)
        patches = F.normalize(x[:, 1 + n :], dim=-1)  # (B, gh * gw, d)
        return patches.transpose(1, 2).reshape(batch, -1, gh, gw), glob
