"""Fine-tune the toy CLIP's last visual block so that MaskCLIP's value path localises concepts, from image tags only.

A web-scale CLIP's value path already localises (that is why MaskCLIP and ReCo's DenseCLIP saliency work); a
tiny CLIP trained on a few thousand captions does not. This step gives the toy model that property without
pixel labels: each patch's value-path embedding is classified among the concept prompts (softmax at the saliency's
scale of 10), and each concept's top patches must explain the image-level tag (multiple-instance learning).
A distillation term keeps each image's pooled embedding where the original model put it, so retrieval (and every
archive built from it) does not move.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.core.clip_dense import token_path, value_path, vit_tokens_before_last_block
from pipeline.core.compact_weights import save_compact_weights
from pipeline.core.models import TOY_ARCH, TOY_NAME, load_model
from pipeline.toy.quality import normalise_pixels, text_embeddings
from pipeline.toy.train import TRAIN_SEED_BASE, build_training_set, vocabulary_token_ids
from pipeline.toy.world import WorldSpec

SALIENCY_SCALE = 10.0  # METHODS.md: DenseCLIP saliency is sigmoid(10 * cos(patch, text))


@dataclass
class DenseFinetuneConfig:
    """Hyper-parameters of the dense-alignment fine-tune of the toy CLIP."""

    steps: int = 800
    batch_size: int = 64
    train_images: int = 8000
    lr: float = 5e-4
    warmup: int = 20
    topk: int = 8  # patches pooled per concept by the tag loss
    dense_weight: float = 2.0
    retain_weight: float = 20.0  # weight of 1 - cos(pooled embedding, the original model's pooled embedding)
    seed: int = 1  # another slice of training scenes than the original run's seed 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "train_images", "topk"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@torch.no_grad()
def _frozen_inputs(loaded, images: np.ndarray, progress: bool, batch: int = 256):
    """What the fine-tune never changes, computed once: every image's input to the last visual block
    (N, 1 + P, width) float16 and the original model's normalised pooled embedding (N, d)."""
    frozen, pooled = [], []
    for start in tqdm(range(0, len(images), batch), desc="frozen features", disable=not progress):
        pixels = normalise_pixels(loaded, images[start : start + batch])  # (B, 3, S, S)
        x = vit_tokens_before_last_block(loaded.model.visual, pixels)[0]
        frozen.append(x.half())
        pooled.append(F.normalize(token_path(loaded.model.visual, x)[:, 0], dim=-1))
    return torch.cat(frozen), torch.cat(pooled)


def tag_loss(patches: torch.Tensor, classes: torch.Tensor, tags: torch.Tensor, topk: int) -> torch.Tensor:
    """Multiple-instance tag loss: patches (B, N, d) and classes (C, d) L2-normalised, tags (B, C) in {0, 1}."""
    probs = (SALIENCY_SCALE * patches @ classes.T).softmax(-1)  # (B, N, C)
    pooled = probs.topk(topk, dim=1).values.mean(1).clamp(1e-6, 1 - 1e-6)  # (B, C)
    return F.binary_cross_entropy(pooled, tags)


def finetune_dense(
    config: DenseFinetuneConfig, out_path: Path, init: Path | None = None, progress: bool = True
) -> Path:
    """Fine-tune the last visual block, ln_post and proj of the toy CLIP (default: the bundled weights).

    Uses up to 2 cores; the process's torch thread count is restored afterwards.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    try:
        return _finetune_dense(config, out_path, init, progress)
    finally:
        torch.set_num_threads(previous)


def _finetune_dense(config: DenseFinetuneConfig, out_path: Path, init: Path | None, progress: bool) -> Path:
    torch.manual_seed(config.seed)
    spec = WorldSpec(rare=())
    images, things, stuffs = build_training_set(spec, config.train_images, TRAIN_SEED_BASE + config.seed)
    loaded = load_model(f"{TOY_NAME}:{init}" if init else TOY_NAME, device="cpu")  # eval mode: no dropout
    model, visual = loaded.model, loaded.model.visual
    trainable = [*visual.transformer.resblocks[-1].parameters(), *visual.ln_post.parameters(), visual.proj]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    classes = list(spec.classes)
    class_emb = text_embeddings(loaded, classes)  # (C, d), the prompts the saliency uses
    rng = np.random.default_rng(config.seed)
    present = [{shape for shape, _ in th} | set(st) for th, st in zip(things, stuffs, strict=True)]
    tags = torch.tensor([[c in p for c in classes] for p in present])  # (N, C) image-level tags
    frozen, original = _frozen_inputs(loaded, images, progress)  # (N, 1 + P, width), (N, d)
    start = time.time()
    history = []
    for step in tqdm(range(config.steps), desc="dense fine-tune", disable=not progress):
        lr = config.lr * min(1.0, (step + 1) / config.warmup) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.from_numpy(rng.choice(len(images), config.batch_size, replace=False))
        x = frozen[index].float()  # (B, 1 + P, width)
        patches = F.normalize(value_path(visual, x)[:, 1:], dim=-1)  # (B, P, d)
        dense = tag_loss(patches, class_emb, tags[index].float(), config.topk)
        pooled = F.normalize(token_path(visual, x)[:, 0], dim=-1)  # (B, d)
        retain = (1 - (pooled * original[index]).sum(-1)).mean()
        loss = config.retain_weight * retain + config.dense_weight * dense
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append((retain.item(), dense.item()))
    save_compact_weights(model.state_dict(), vocabulary_token_ids(loaded.tokenizer, spec), out_path)
    first, last = np.mean(history[:20], 0), np.mean(history[-20:], 0)
    out_path.with_suffix(".json").write_text(
        json.dumps(
            {
                "arch": TOY_ARCH,
                "dense_finetune": asdict(config),
                "loss_first_20": {"retain": first[0], "tag": first[1]},
                "loss_last_20": {"retain": last[0], "tag": last[1]},
                "seconds": time.time() - start,
            },
            indent=2,
        )
    )
    return out_path
