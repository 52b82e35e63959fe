"""A short smoke run of `coarchive toy train` writes weights that load through the regular open_clip path."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.core.models import load_model
from pipeline.toy.train import TrainConfig, train_toy_clip


def test_training_smoke_run_writes_loadable_weights(tmp_path: Path) -> None:
    out = tmp_path / "tiny.safetensors"
    config = TrainConfig(steps=3, batch_size=16, groups=2, train_images=400, warmup=1, save_every=2)
    torch.set_num_threads(1)
    train_toy_clip(config, out, progress=False)
    assert torch.get_num_threads() == 1  # training took every core and gave them back (an xdist worker shares 2)
    assert out.is_file() and (tmp_path / "tiny_step2.safetensors").is_file()
    assert out.stat().st_size < 3_000_000  # compact: the 49,408-row token table is not shipped
    loaded = load_model(f"toy:{out}", device="cpu")
    with torch.no_grad():
        emb = loaded.model.encode_text(loaded.tokenizer(["a photo of a circle."]))
    assert torch.isfinite(emb).all()
