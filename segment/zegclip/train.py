"""ZegCLIP training: inductive on seen classes, transductive continuation with online pseudo-labels; checkpoints,
exact resume, progress, mixed precision on CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from segment.recipe_json import recipe_from_json
from segment.zegclip.checkpoint import STATE, CheckpointMeta, load_weights, read_meta, save_checkpoint
from segment.zegclip.data import IGNORE, UNLABELLED, TrainingSet, augment, clip_mean_std, photometric_distortion
from segment.zegclip.loss import LossConfig, nel_loss
from segment.zegclip.model import ZegCLIP
from segment.zegclip.vocabulary import Vocabulary

SEEN_BIAS = 0.1  # official inductive inference: subtracted from seen-class sigmoid scores


@dataclass(frozen=True)
class TrainConfig:
    """The recipe; defaults are the official VOC ones (AdamW 2e-5, x10 on prompts and head, poly 0.9,
    1,500 linear warm-up iterations, batch 16, 20k iterations, 512 crops)."""

    steps: int = 20_000
    batch_size: int = 16
    lr: float = 2e-5
    lr_mult: float = 10.0  # on every trainable parameter (prompts are the backbone's, the rest the head's)
    weight_decay: float = 0.01  # not on norms
    poly_power: float = 0.9
    min_lr: float = 1e-6
    warmup: int = 1500
    warmup_ratio: float = 1e-6
    crop_size: int = 512
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    photometric: bool = True  # mmseg's PhotoMetricDistortion, before scale and crop
    drop_path: float = 0.1  # stochastic depth on the frozen tower's blocks, rising to this rate at the last one
    focal_weight: float = 100.0
    dice_weight: float = 1.0
    ignore_as_negative: bool = False
    amp: bool = True  # bfloat16 autocast, on CUDA only
    seed: int = 0
    save_every: int = 1000

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.save_every, self.crop_size) < 1:
            raise ValueError("steps, batch_size, save_every and crop_size must be positive")
        if self.warmup < 0:
            raise ValueError(f"warmup must be non-negative, got {self.warmup}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}")
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")

    @property
    def loss(self) -> LossConfig:
        """The loss settings."""
        return LossConfig(self.focal_weight, self.dice_weight, ignore_as_negative=self.ignore_as_negative)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """The config saved by `asdict` (JSON lists back to tuples); unknown keys are an error."""
        return recipe_from_json(cls, data)


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """mmcv's poly schedule (to min_lr) with linear warm-up, as a factor of the base learning rate."""
    base = config.lr * config.lr_mult
    floor = min(config.min_lr, base)
    poly = ((base - floor) * (1 - step / config.steps) ** config.poly_power + floor) / base
    if step < config.warmup:
        poly *= 1 - (1 - step / config.warmup) * (1 - config.warmup_ratio)
    return poly


def make_optimizer(model: ZegCLIP, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, no weight decay on norms."""
    params = model.trainable_parameters()
    no_decay = [p for n, p in params.items() if "norm" in n]
    decay = [p for n, p in params.items() if "norm" not in n]
    lr = config.lr * config.lr_mult
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "lr": lr, "base_lr": lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": lr, "base_lr": lr},
    ]
    return torch.optim.AdamW(groups)


def pseudo_label(logits: torch.Tensor, labels: torch.Tensor, pseudo: list[int]) -> torch.Tensor:
    """labels (B, H, W) with UNLABELLED pixels set to the argmax over the `pseudo` classes' sigmoids; IGNORE if none."""
    if not pseudo:
        return torch.where(labels == UNLABELLED, torch.full_like(labels, IGNORE), labels)
    rows = torch.tensor(pseudo, device=logits.device)
    best = rows[logits.detach()[:, rows].argmax(1)]  # (B, H, W); sigmoid is monotonic
    return torch.where(labels == UNLABELLED, best, labels)


def _autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA when enabled, else nothing."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batch(data: TrainingSet, picks: list[int], config: TrainConfig, gen: torch.Generator, mean, std):
    """Augmented normalised pixels (B, 3, S, S) and labels (B, S, S) int64 for the picked samples."""
    xs, ys = [], []
    for i in picks:
        x = torch.from_numpy(np.array(data.images[i])).permute(2, 0, 1).float().div_(255)  # (3, H, W) in [0, 1]
        if config.photometric:
            x = photometric_distortion(x, gen)
        x = (x - mean) / std
        y = torch.from_numpy(data.labels[i].astype(np.int64))  # (H, W)
        x, y = augment(x, y, config.crop_size, config.scale_range, config.flip, gen)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


@torch.enable_grad()
def train_zegclip(
    model: ZegCLIP,
    data: TrainingSet,
    vocab: Vocabulary,
    config: TrainConfig,
    clip_ref: str,
    pseudo_classes: Sequence[str] = (),
    out: Path | str | None = None,
    resume: bool = False,
    init: Path | str | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    device: str | torch.device = "cpu",
    extra: dict | None = None,
    on_step=None,
) -> ZegCLIP:
    """Train `model`'s prompts and head on `data` (queries: its classes, embedded by `vocab`); eval mode at the end.

    UNLABELLED pixels are ignored, or with `pseudo_classes` (transductive) labelled online by the argmax of those
    classes' sigmoids. `init` starts from another checkpoint's weights (the inductive one); `out` keeps
    checkpoints every `save_every` steps and at the end; `resume` continues the run in `out` exactly.
    `max_steps` stops this call early (checkpointed). `on_step(step, losses)` sees every step's losses.
    """
    device = torch.device(device)
    pseudo = [data.classes.index(c) if c in data.classes else -1 for c in pseudo_classes]
    if -1 in pseudo:
        raise ValueError(f"pseudo-label classes {list(pseudo_classes)} must be among the training classes")
    text = vocab.embeddings(data.classes).to(device)  # (C, d)
    folder = Path(out) if out is not None else None
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model.to(device)
    if init is not None:
        load_weights(init, model)
    optimizer = make_optimizer(model, config)
    step = 0
    seen_bias = 0.0 if pseudo else SEEN_BIAS
    meta = CheckpointMeta(clip_ref, model.config, asdict(config), list(data.classes), list(pseudo_classes),
                          seen_bias, 0, dict(extra or {}))  # fmt: skip
    if resume:
        if folder is None:
            raise ValueError("resume needs the checkpoint folder (out=...)")
        saved = read_meta(folder)
        if not (folder / STATE).is_file():
            raise FileNotFoundError(f"no training state {folder / STATE} to resume from")
        if TrainConfig.from_dict(saved.train) != config or saved.classes != meta.classes or saved.model != model.config:
            raise ValueError(f"the checkpoint in {folder} was trained with another config or classes")
        load_weights(folder, model)
        state = torch.load(folder / STATE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
    mean, std = clip_mean_std(model.encoder.visual)
    stop = config.steps if max_steps is None else min(config.steps, step + max_steps)
    model.train()
    model.encoder.set_drop_path(config.drop_path)
    bar = tqdm(total=config.steps, initial=step, desc="zegclip", disable=not progress)
    while step < stop:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * learning_rate_factor(step, config)
        picks = torch.randint(0, len(data), (config.batch_size,), generator=gen).tolist()
        x, y = _batch(data, picks, config, gen, mean, std)
        x, y = x.to(device), y.to(device)
        with _autocast(device, config.amp):
            logits = model(x, text)  # (B, C, S, S)
        losses = nel_loss(logits.float(), pseudo_label(logits, y, pseudo), config.loss)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
        if on_step is not None:
            on_step(step, {k: float(v.detach()) for k, v in losses.items()})
        if folder is not None and (step % config.save_every == 0 or step == stop):
            state = {"step": step, "optimizer": optimizer.state_dict(), "generator": gen.get_state()}
            meta.step = step
            save_checkpoint(folder, model, vocab, meta, {**state, "torch_rng": torch.get_rng_state()})
    bar.close()
    return model.eval()
