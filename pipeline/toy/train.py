"""Train the toy CLIP on toy-world captions: one fixed-seed contrastive run whose fp16 weights ship with coarchive."""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.core.compact_weights import save_compact_weights
from pipeline.core.models import TOY_ARCH, register_model_configs
from pipeline.toy.export import render_as_pooled
from pipeline.toy.quality import TEMPLATES
from pipeline.toy.world import COLOURS, WorldSpec, make_caption

# Training scenes come from their own seed range, so they never coincide with pools or benchmarks of small seeds.
TRAIN_SEED_BASE = 1_000_003


@dataclass
class TrainConfig:
    """Hyper-parameters of a toy CLIP training run."""

    steps: int = 1600
    batch_size: int = 128
    train_images: int = 40_000
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    groups: int = 4  # each batch is `groups` blocks of images that share their background (hard negatives)
    mention_rate: float = 0.75  # chance each thing is named in a training caption (at least one always is)
    single_thing: float = 0.2  # curriculum: for this fraction of the steps, only scenes holding one thing
    shape_only: float = 0.4  # curriculum: for this fraction of the steps captions carry no colour words
    words_weight: float = 1.0  # weight of the caption-words loss: both towers predict the caption's words
    words_only: float = 0.2  # curriculum: for this fraction of the steps, the caption-words loss alone
    seed: int = 0
    save_every: int = 0  # also write intermediate weights every this many steps (0: only at the end)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "train_images", "groups"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.batch_size % self.groups:
            raise ValueError(f"batch_size {self.batch_size} is not a multiple of groups {self.groups}")


def build_training_set(
    spec: WorldSpec, count: int, seed: int, workers: int | None = None, with_captions: bool = False
) -> tuple:
    """Render `count` training scenes (JPEG round-tripped like the pool): images (N, H, W, 3) uint8 and contents
    (things, stuff), then each scene's own caption if `with_captions`."""
    jobs = [(spec, seed, i) for i in range(count)]
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        scenes = list(tqdm(pool.map(render_as_pooled, jobs, chunksize=256), total=count, desc="render train set"))
    out = np.stack([s.image for s in scenes]), [s.things for s in scenes], [s.stuff for s in scenes]
    return (*out, [s.caption for s in scenes]) if with_captions else out


def vocabulary_token_ids(tokenizer, spec: WorldSpec) -> list[int]:
    """Token ids of every word the toy model is trained or prompted with (the rows the compact weights keep)."""
    words = [*spec.classes, *COLOURS, "and", "on", "of", "in", "front", "there", "is", "a", "an", "the"]
    texts = [*words, "a photo of a picture showing background this scene."]
    texts += [t.format(c) for t in TEMPLATES for c in spec.classes]
    return sorted({int(i) for i in tokenizer(texts).flatten().tolist()})


def _caption_words(captions: list[str], words: list[str]) -> torch.Tensor:
    """(B, V) multi-hot: which of `words` each caption holds."""
    tokens = [set(c.rstrip(".").replace(",", " ").split()) for c in captions]
    return torch.tensor([[w in t for w in words] for t in tokens], dtype=torch.float32)


def _soft_targets(captions: list[str]) -> torch.Tensor:
    """(B, B) targets: uniform over the items whose caption is the same string."""
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
    return same / same.sum(1, keepdim=True)


def train_toy_clip(config: TrainConfig, out_path: Path, progress: bool = True) -> Path:
    """Train the toy CLIP from scratch with `config` and write its compact fp16 weights to `out_path`.

    Training uses every core; the process's torch thread count is restored afterwards.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return _train_toy_clip(config, out_path, progress)
    finally:
        torch.set_num_threads(previous)


def _train_toy_clip(config: TrainConfig, out_path: Path, progress: bool) -> Path:
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    register_model_configs()
    torch.manual_seed(config.seed)
    spec = WorldSpec(rare=())  # the model's "internet": every thing class common, unlike the pools it serves
    images, things, stuffs = build_training_set(spec, config.train_images, TRAIN_SEED_BASE + config.seed)
    by_background = {s: np.flatnonzero([st[0] == s for st in stuffs]) for s in spec.stuff}
    single_by_background = {
        s: np.flatnonzero([st[0] == s and len(th) == 1 for st, th in zip(stuffs, things, strict=True)])
        for s in spec.stuff
    }
    model = open_clip.create_model(TOY_ARCH)
    tokenizer = open_clip.get_tokenizer(TOY_ARCH)
    model.train()
    words = sorted({*spec.things, *spec.stuff, *COLOURS})
    # A throw-away head shared by both towers: each embedding predicts which content words its caption holds.
    # It gives contrastive training a signal from the first step (image features alone, or text features alone,
    # are otherwise random) and is discarded afterwards; only the CLIP weights ship.
    words_head = torch.nn.Linear(model.text_projection.shape[1], len(words))
    params = list(model.named_parameters()) + [(f"words_head.{n}", p) for n, p in words_head.named_parameters()]
    decay = [p for n, p in params if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in params if p.ndim < 2 or "embedding" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.98),
    )
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    rng = np.random.default_rng(config.seed)
    per_group = config.batch_size // config.groups
    bar = tqdm(range(config.steps), desc="train toy clip", disable=not progress)
    start = time.time()
    for step in bar:
        lr = config.lr * min(1.0, (step + 1) / config.warmup)
        lr *= 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        backgrounds = rng.choice(spec.stuff, config.groups)
        pools = single_by_background if step < config.single_thing * config.steps else by_background
        index = np.concatenate([rng.choice(pools[b], per_group, replace=False) for b in backgrounds])
        captions = []
        for i in index:
            named = [t for t in things[i] if rng.random() < config.mention_rate] or [things[i][0]]
            colour_rate = 0.0 if step < config.shape_only * config.steps else 0.5
            captions.append(make_caption(named, stuffs[i], rng, colour_rate=colour_rate))
        pixels = torch.from_numpy(images[index]).permute(0, 3, 1, 2).float().div_(255)
        pixels = (pixels - mean) / std  # (B, 3, H, W)
        image_raw = model.encode_image(pixels)  # (B, d)
        text_raw = model.encode_text(tokenizer(captions))  # (B, d)
        present = _caption_words(captions, words)  # (B, V)
        loss = config.words_weight * (
            F.binary_cross_entropy_with_logits(words_head(image_raw), present)
            + F.binary_cross_entropy_with_logits(words_head(text_raw), present)
        )
        logit_scale = model.logit_scale.exp()
        if step >= config.words_only * config.steps:
            logits = logit_scale * F.normalize(image_raw, dim=-1) @ F.normalize(text_raw, dim=-1).T  # (B, B)
            targets = _soft_targets(captions)
            loss = loss + 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{logit_scale.item():.1f}")
        if config.save_every and step and step % config.save_every == 0:
            snapshot = out_path.with_name(f"{out_path.stem}_step{step}{out_path.suffix}")
            save_compact_weights(model.state_dict(), vocabulary_token_ids(tokenizer, spec), snapshot)
        if not progress and (step % 100 == 0 or step == config.steps - 1):
            print(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {time.time() - start:.0f}s", flush=True)
    model.eval()
    save_compact_weights(model.state_dict(), vocabulary_token_ids(tokenizer, spec), out_path)
    out_path.with_suffix(".json").write_text(
        json.dumps({"arch": TOY_ARCH, "train": asdict(config), "seconds": time.time() - start}, indent=2)
    )
    return out_path
