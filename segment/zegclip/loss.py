"""The non-mutually-exclusive loss (NEL): per-class sigmoid focal loss plus dice, over the ground-truth classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE = 255


@dataclass(frozen=True)
class LossConfig:
    """Focal (alpha, gamma, weight) and dice weight; `ignore_as_negative` is the official treatment of 255 pixels."""

    focal_weight: float = 100.0
    dice_weight: float = 1.0
    alpha: float = 0.25
    gamma: float = 2.0
    ignore_as_negative: bool = False  # official: ignored pixels count as negatives for every class


def one_hot_targets(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """labels (B, H, W) int64 with 255 = ignore -> binary targets (B, C, H, W) float and valid pixels (B, H, W)."""
    valid = labels != IGNORE
    if bool(((labels < 0) | (labels >= num_classes))[valid].any()):
        bad = torch.unique(labels[valid & ((labels < 0) | (labels >= num_classes))]).tolist()
        raise ValueError(f"labels {bad} are outside [0, {num_classes}) and not {IGNORE}")
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    targets = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).float() * valid[:, None]
    return targets, valid


def nel_loss(logits: torch.Tensor, labels: torch.Tensor, config: LossConfig | None = None) -> dict[str, torch.Tensor]:
    """Mask logits (B, C, H, W) and labels (B, H, W) -> {"focal", "dice", "loss"} (weighted, normalised by the
    number of (image, ground-truth class) pairs). Focal covers every class; dice only the classes present."""
    config = config or LossConfig()
    logits = logits.float()
    c = logits.shape[1]
    targets, valid = one_hot_targets(labels, c)  # (B, C, H, W), (B, H, W)
    present = targets.flatten(2).amax(-1) > 0  # (B, C)
    num_masks = max(int(present.sum()), 1)
    weight = torch.ones_like(valid, dtype=logits.dtype) if config.ignore_as_negative else valid.to(logits.dtype)
    weight = weight[:, None].expand_as(logits)  # (B, C, H, W)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    prob = logits.sigmoid()
    p_t = prob * targets + (1 - prob) * (1 - targets)
    alpha_t = config.alpha * targets + (1 - config.alpha) * (1 - targets)
    focal = alpha_t * ce * (1 - p_t) ** config.gamma  # (B, C, H, W)
    pixels = weight.flatten(2).sum(-1).clamp_min(1)  # (B, C)
    focal = ((focal * weight).flatten(2).sum(-1) / pixels).sum() / num_masks
    p = (prob * weight).flatten(2)[present]  # (M, H * W)
    t = targets.flatten(2)[present]
    dice = (1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)).sum() / num_masks
    total = config.focal_weight * focal + config.dice_weight * dice
    return {"focal": focal.detach(), "dice": dice.detach(), "loss": total}
