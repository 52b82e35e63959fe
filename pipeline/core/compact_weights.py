"""Compact fp16 CLIP weights (the bundled toy CLIP's format): only the token-embedding rows its vocabulary uses."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

TOKEN_TABLE = "token_embedding.weight"


def save_compact_weights(state_dict: dict[str, torch.Tensor], used_token_ids: list[int], path: Path) -> None:
    """Write `state_dict` as fp16 safetensors, keeping only the `used_token_ids` rows of the token table."""
    ids = torch.tensor(sorted(set(used_token_ids)), dtype=torch.int64)
    compact = {k: v.detach().to(torch.float16).contiguous() for k, v in state_dict.items() if k != TOKEN_TABLE}
    table = state_dict[TOKEN_TABLE]
    compact["token_embedding.rows"] = table[ids].detach().to(torch.float16).contiguous()
    compact["token_embedding.ids"] = ids
    compact["token_embedding.vocab_size"] = torch.tensor([table.shape[0]], dtype=torch.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(compact, str(path), metadata={"format": "coarchive-compact-clip"})


def expand_compact_weights(source: Path, target: Path) -> None:
    """Rebuild a full open_clip state dict (unused token rows zero) from compact weights, written atomically."""
    compact = load_file(str(source))
    ids = compact.pop("token_embedding.ids")
    rows = compact.pop("token_embedding.rows")
    vocab = int(compact.pop("token_embedding.vocab_size")[0])
    table = torch.zeros(vocab, rows.shape[1], dtype=torch.float32)
    table[ids] = rows.float()
    full = {k: v.float().contiguous() for k, v in compact.items()}
    full[TOKEN_TABLE] = table
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    save_file(full, str(tmp))
    os.replace(tmp, target)
