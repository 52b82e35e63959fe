"""Fine-tune the toy CLIP's last visual blocks so that MaskCLIP's value path localises concepts, from captions only.

A web-scale CLIP's value path already localises (that is why MaskCLIP and ReCo's DenseCLIP saliency work); a
tiny CLIP trained on a few thousand captions does not. This step (phase 2 of `coarchive toy train`) gives the toy
model that property without pixel labels, boxes or mask losses. Each image's tags are the words of its caption:
a thing the caption does not name is absent (the toy captions list every thing they show), a background it does
not name is unknown (captions name the background only sometimes), so unnamed backgrounds are left out of the loss.
Each patch's value-path embedding is classified among the concept prompts (softmax at the saliency's scale of 10),
and each concept's top patches must explain the tags (multiple-instance learning); an optional term pushes every
patch's probability of the concepts the caption rules out towards zero. A distillation term keeps each image's
pooled embedding where the original model put it, so retrieval (and every archive built from it) does not move.
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

from pipeline.core.clip_dense import resized_positional_embedding, token_path, value_path
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
    blocks: int = 1  # trainable visual blocks, counted from the last (plus ln_post and proj)
    topk: int = 8  # patches pooled per concept by the tag loss
    dense_weight: float = 2.0
    absent_weight: float = 0.0  # weight of the mean probability that patches give to concepts the caption rules out
    retain_weight: float = 20.0  # weight of 1 - cos(pooled embedding, the original model's pooled embedding)
    seed: int = 1  # another slice of training scenes than the original run's seed 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "train_images", "topk", "blocks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def caption_tags(captions: list[str], spec: WorldSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-level tags read from caption words: tags (N, C) in {0, 1} over `spec.classes`, and which are known.

    A named class is present; an unnamed thing is absent (toy captions name every thing they show); an unnamed
    background is unknown (known 0), since captions name the background only some of the time.
    """
    words = [set(c.lower().rstrip(".").replace(",", " ").split()) for c in captions]
    tags = torch.tensor([[c in w for c in spec.classes] for w in words], dtype=torch.float32)
    known = tags.clone()
    known[:, len(spec.stuff) :] = 1
    return tags, known


def tag_loss(
    patches: torch.Tensor, classes: torch.Tensor, tags: torch.Tensor, topk: int, known: torch.Tensor | None = None
) -> torch.Tensor:
    """Multiple-instance tag loss: patches (B, N, d) and classes (C, d) L2-normalised, tags (B, C) in {0, 1};
    `known` (B, C) masks out tags the caption says nothing about."""
    probs = (SALIENCY_SCALE * patches @ classes.T).softmax(-1)  # (B, N, C)
    pooled = probs.topk(topk, dim=1).values.mean(1).clamp(1e-6, 1 - 1e-6)  # (B, C)
    bce = F.binary_cross_entropy(pooled, tags, reduction="none")
    if known is None:
        return bce.mean()
    return (bce * known).sum() / known.sum().clamp(min=1)


def absent_loss(patches: torch.Tensor, classes: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
    """Mean over patches of the probability given to concepts ruled out for the image (absent (B, C) in {0, 1})."""
    probs = (SALIENCY_SCALE * patches @ classes.T).softmax(-1)  # (B, N, C)
    return (probs * absent[:, None, :]).sum(-1).mean()


def tokens_before_block(visual: torch.nn.Module, pixels: torch.Tensor, block: int) -> torch.Tensor:
    """A ViT's tokens (B, 1 + P, width) at the input of block `block` (0: right after ln_pre)."""
    x = visual.conv1(pixels)  # (B, width, gh, gw)
    grid = (x.shape[-2], x.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], 1) + resized_positional_embedding(visual, grid).to(x.dtype)
    x = visual.ln_pre(x)
    for b in visual.transformer.resblocks[:block]:
        x = b(x)
    return x


@torch.no_grad()
def _frozen_inputs(loaded, images: np.ndarray, first: int, progress: bool, batch: int = 256):
    """What the fine-tune never changes, computed once: every image's input to the first trainable block
    (N, 1 + P, width) float16 and the original model's normalised pooled embedding (N, d)."""
    visual = loaded.model.visual
    frozen, pooled = [], []
    for start in tqdm(range(0, len(images), batch), desc="frozen features", disable=not progress):
        pixels = normalise_pixels(loaded, images[start : start + batch])  # (B, 3, S, S)
        x = tokens_before_block(visual, pixels, first)
        frozen.append(x.half())
        for block in visual.transformer.resblocks[first:-1]:
            x = block(x)
        pooled.append(F.normalize(token_path(visual, x)[:, 0], dim=-1))
    return torch.cat(frozen), torch.cat(pooled)


def finetune_dense(
    config: DenseFinetuneConfig, out_path: Path, init: Path | None = None, progress: bool = True
) -> Path:
    """Fine-tune the last `config.blocks` visual blocks, ln_post and proj of the toy CLIP (default: the bundled
    weights) and write compact weights and a .json of the run.

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
    images, _, _, captions = build_training_set(
        spec, config.train_images, TRAIN_SEED_BASE + config.seed, with_captions=True
    )
    loaded = load_model(f"{TOY_NAME}:{init}" if init else TOY_NAME, device="cpu")  # eval mode: no dropout
    model, visual = loaded.model, loaded.model.visual
    blocks = visual.transformer.resblocks
    if config.blocks > len(blocks):
        raise ValueError(f"blocks is {config.blocks} but the visual tower has {len(blocks)}")
    first = len(blocks) - config.blocks
    trainable = [*(p for b in blocks[first:] for p in b.parameters()), *visual.ln_post.parameters(), visual.proj]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    class_emb = text_embeddings(loaded, list(spec.classes))  # (C, d), the prompts the saliency uses
    rng = np.random.default_rng(config.seed)
    tags, known = caption_tags(list(captions), spec)  # (N, C) image-level tags from the caption words
    frozen, original = _frozen_inputs(loaded, images, first, progress)  # (N, 1 + P, width), (N, d)
    start = time.time()
    history = []
    for step in tqdm(range(config.steps), desc="dense fine-tune", disable=not progress):
        lr = config.lr * min(1.0, (step + 1) / config.warmup) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.from_numpy(rng.choice(len(images), config.batch_size, replace=False))
        x = frozen[index].float()  # (B, 1 + P, width)
        for block in blocks[first:-1]:
            x = block(x)
        patches = F.normalize(value_path(visual, x)[:, 1:], dim=-1)  # (B, P, d)
        dense = tag_loss(patches, class_emb, tags[index], config.topk, known[index])
        loss = config.dense_weight * dense
        if config.absent_weight:
            loss = loss + config.absent_weight * absent_loss(patches, class_emb, (1 - tags[index]) * known[index])
        pooled = F.normalize(token_path(visual, x)[:, 0], dim=-1)  # (B, d)
        retain = (1 - (pooled * original[index]).sum(-1)).mean()
        loss = loss + config.retain_weight * retain
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append((retain.item(), dense.item()))
        if not progress and (step % 100 == 0 or step == config.steps - 1):
            print(f"dense step {step} retain {retain.item():.4f} tag {dense.item():.4f}", flush=True)
    save_compact_weights(model.state_dict(), vocabulary_token_ids(loaded.tokenizer, spec), out_path)
    first20, last20 = np.mean(history[:20], 0), np.mean(history[-20:], 0)
    out_path.with_suffix(".json").write_text(
        json.dumps(
            {
                "arch": TOY_ARCH,
                "dense_finetune": asdict(config),
                "init": str(init) if init else TOY_NAME,
                "loss_first_20": {"retain": first20[0], "tag": first20[1]},
                "loss_last_20": {"retain": last20[0], "tag": last20[1]},
                "seconds": time.time() - start,
            },
            indent=2,
        )
    )
    return out_path


# Phase 2 of the shipped toy CLIP, stage by stage (`coarchive toy train` runs it after phase 1). Stage 1 trains
# every visual block with the tag loss over each concept's top 8 patches: things are found, but too large (a
# triangle covers 2-10 patches, so 8 patches per concept spill onto the background). Stage 2 retrains only the
# last block with the top 2 patches and the absent term, which shrinks things back to their outlines.
SHIPPED_DENSE_STAGES = (
    DenseFinetuneConfig(steps=800, blocks=4, topk=8),
    DenseFinetuneConfig(steps=400, blocks=1, topk=2, absent_weight=1.0),
)


def build_toy_clip(
    train_config,
    dense_stages: tuple[DenseFinetuneConfig, ...] = SHIPPED_DENSE_STAGES,
    out_path: Path = Path("toy_clip.safetensors"),
    base: Path | None = None,
    progress: bool = True,
) -> Path:
    """The whole recipe of the shipped toy CLIP: phase 1, the contrastive run of `train_toy_clip` (skipped when
    `base` names its output already), then phase 2, the dense fine-tune stages in turn, each starting from the
    previous one's compact weights (none: phase 1 alone writes `out_path`).

    Writes `out_path` and one .json recording both phases and their seconds; intermediate files sit beside it.
    """
    from pipeline.toy.train import train_toy_clip

    out_path = Path(out_path)
    if not dense_stages:
        if base is not None:
            raise ValueError("a phase-1 base is only used by the dense stages; there are none")
        return train_toy_clip(train_config, out_path, progress=progress)
    if base is None:
        base = out_path.with_name(f"{out_path.stem}_phase1{out_path.suffix}")
        train_toy_clip(train_config, base, progress=progress)
        phase1 = json.loads(base.with_suffix(".json").read_text())
    else:
        recorded = Path(base).with_suffix(".json")
        phase1 = json.loads(recorded.read_text()) if recorded.is_file() else {}
        phase1["base"] = str(base)
    previous, stages = Path(base), []
    for number, stage in enumerate(dense_stages, 1):
        last = number == len(dense_stages)
        target = out_path if last else out_path.with_name(f"{out_path.stem}_dense{number}{out_path.suffix}")
        finetune_dense(stage, target, init=previous, progress=progress)
        stages.append(json.loads(target.with_suffix(".json").read_text()))
        previous = target
    record = {
        "arch": TOY_ARCH,
        "train": phase1.get("train"),
        "phase1_seconds": phase1.get("seconds"),
        **({"base": phase1["base"]} if "base" in phase1 else {}),
        "dense_stages": [
            {
                "dense_finetune": s["dense_finetune"],
                "loss_first_20": s["loss_first_20"],
                "loss_last_20": s["loss_last_20"],
                "seconds": s["seconds"],
            }
            for s in stages
        ],
        "phase2_seconds": sum(s["seconds"] for s in stages),
    }
    if phase1.get("seconds") is not None:
        record["seconds"] = phase1["seconds"] + record["phase2_seconds"]
    out_path.with_suffix(".json").write_text(json.dumps(record, indent=2))
    return out_path
