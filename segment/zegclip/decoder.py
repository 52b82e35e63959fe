"""ZegCLIP's decoder: class queries cross-attend to patch tokens; the last layer's attention logits are the masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    """Multi-head attention with separate q/k/v/proj Linears; also returns the head-averaged pre-softmax logits."""

    def __init__(self, dim: int, heads: int = 8, attn_drop: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"decoder width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_drop)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, C, dim), memory (B, N, dim) -> output (B, C, dim) and logits (B, C, N) averaged over heads."""
        b, c, dim = query.shape
        n, h = memory.shape[1], self.heads
        q = self.q(query).reshape(b, c, h, dim // h).transpose(1, 2)  # (B, h, C, dim / h)
        k = self.k(memory).reshape(b, n, h, dim // h).transpose(1, 2)  # (B, h, N, dim / h)
        v = self.v(memory).reshape(b, n, h, dim // h).transpose(1, 2)
        logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, h, C, N)
        out = self.attn_drop(logits.softmax(-1)) @ v  # (B, h, C, dim / h)
        return self.proj(out.transpose(1, 2).reshape(b, c, dim)), logits.mean(1)


class DecoderLayer(nn.Module):
    """Post-norm layer: cross-attention to the patches, then an FFN (ReLU).

    `self_attn` is built but never called, as in the official code: it only keeps the official parameter
    structure (and count) so that official checkpoints load; `self_attention=False` leaves it out.
    """

    def __init__(self, dim: int, heads: int = 8, ffn: int | None = None, dropout: float = 0.1, self_attention=True):
        super().__init__()
        ffn = ffn or 4 * dim
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout) if self_attention else None
        self.multihead_attn = CrossAttention(dim, heads, dropout)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)  # belongs to the unused self-attention; kept for the structure
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, C, dim), memory (B, N, dim) -> updated queries (B, C, dim), attention logits (B, C, N)."""
        attended, logits = self.multihead_attn(query, memory)
        query = self.norm2(query + self.dropout2(attended))
        query = self.norm3(query + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(query))))))
        return query, logits


class Decoder(nn.Module):
    """A stack of `num_layers` DecoderLayers; mask logits come from the last one."""

    def __init__(self, dim: int, num_layers: int = 3, heads: int = 8, dropout: float = 0.1, self_attention=True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be positive, got {num_layers}")
        self.layers = nn.ModuleList(
            DecoderLayer(dim, heads, 4 * dim, dropout, self_attention) for _ in range(num_layers)
        )

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, C, dim), memory (B, N, dim) -> last queries (B, C, dim) and last attention logits (B, C, N)."""
        logits = query.new_zeros(0)
        for layer in self.layers:
            query, logits = layer(query, memory)
        return query, logits
