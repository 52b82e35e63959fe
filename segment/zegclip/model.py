"""The ZegCLIP network: prompted frozen ViT, relationship descriptor (RD), decoder; mask logits per class query."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segment.zegclip.decoder import Decoder
from segment.zegclip.prompts import PromptedViT


@dataclass(frozen=True)
class ModelConfig:
    """Architecture options; the defaults are the official VOC structure (10 prompt tokens, 3 layers, 8 heads)."""

    num_tokens: int = 10
    decoder_layers: int = 3
    heads: int = 8
    dropout: float = 0.1
    self_attention: bool = True  # the official, never-called decoder self-attention (needed to load checkpoints)
    double_cls: bool = True  # official: the CLS embedding is added twice
    pos_mode: str = "bilinear"
    value_path: bool = False  # not ZegCLIP: patch tokens from MaskCLIP's value path of the last block

    def __post_init__(self) -> None:
        if self.num_tokens < 1 or self.decoder_layers < 1 or self.heads < 1:
            raise ValueError("num_tokens, decoder_layers and heads must be positive")
        if self.pos_mode not in ("bilinear", "bicubic"):
            raise ValueError(f"pos_mode must be 'bilinear' or 'bicubic', got {self.pos_mode!r}")


class ZegHead(nn.Module):
    """RD: q_c = Linear(2d -> d)([t_c * g ; t_c]); the decoder turns queries and patches into mask logits."""

    def __init__(self, dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.q_proj = nn.Linear(2 * dim, dim)
        self.decoder = Decoder(dim, config.decoder_layers, config.heads, config.dropout, config.self_attention)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def queries(self, text: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
        """Class queries (B, C, d) from text embeddings (C, d) and global image embeddings (B, d)."""
        t = text.to(glob.dtype).expand(glob.shape[0], -1, -1)  # (B, C, d)
        return self.q_proj(torch.cat([t * glob[:, None], t], -1))

    def forward(self, patches: torch.Tensor, glob: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """patches (B, d, gh, gw), glob (B, d), text (C, d) -> mask logits (B, C, gh, gw)."""
        b, _, gh, gw = patches.shape
        memory = patches.flatten(2).transpose(1, 2)  # (B, gh * gw, d)
        _, logits = self.decoder(self.queries(text, glob), memory)  # (B, C, gh * gw)
        return logits.reshape(b, -1, gh, gw)


class ZegCLIP(nn.Module):
    """ZegCLIP on an open_clip ViT image tower; only the prompt parameters and the head train."""

    def __init__(self, visual: nn.Module, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        self.encoder = PromptedViT(visual, c.num_tokens, c.dropout, c.double_cls, c.pos_mode, c.value_path)
        self.head = ZegHead(self.encoder.output_dim, c)

    @property
    def dim(self) -> int:
        """Dimension of the joint space: text embeddings must have it."""
        return self.encoder.output_dim

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        """Name -> parameter for everything that trains (the frozen image tower excluded)."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The state a checkpoint keeps: prompts, prompt projection and norm, RD and decoder."""
        return {n: t for n, t in self.state_dict().items() if not n.startswith("encoder.visual.")}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load what `trainable_state_dict` saved; ValueError naming missing or unexpected keys."""
        own = self.trainable_state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(f"ZegCLIP state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise ValueError(f"{name}: checkpoint shape {tuple(tensor.shape)}, model {tuple(own[name].shape)}")
        self.load_state_dict(state, strict=False)

    def forward(self, pixels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, H, W) and unit text embeddings (C, d) -> mask logits (B, C, H, W)."""
        if text.ndim != 2 or text.shape[1] != self.dim:
            raise ValueError(f"text embeddings must be (C, {self.dim}), got {tuple(text.shape)}")
        patches, glob = self.encoder(pixels)
        logits = self.head(patches, glob, text.to(pixels.device))  # (B, C, gh, gw)
        return F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)


def count_trainable(model: nn.Module) -> int:
    """Number of trainable parameter elements."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
