"""ZegCLIP training data: images with label maps over query classes, seen/unseen splits, CLIP pixels, augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255  # no loss
UNLABELLED = 254  # a valid pixel of no seen class: ignored (inductive) or pseudo-labelled (transductive)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TrainingSet:
    """Images (H, W, 3) uint8 and label maps (H, W) uint8: indices into `classes`, 254 unlabelled, 255 ignore."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    classes: list[str]

    def __post_init__(self) -> None:
        if not self.images:
            raise ValueError("no training images")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} label maps")
        if len(self.classes) > UNLABELLED:
            raise ValueError(f"at most {UNLABELLED} classes fit uint8 labels, got {len(self.classes)}")
        for i, (image, label) in enumerate(zip(self.images, self.labels, strict=True)):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"training image {i} must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            if label.shape != image.shape[:2]:
                raise ValueError(f"label map {i} has shape {label.shape}, its image {image.shape[:2]}")
            values = np.unique(label)
            bad = values[(values >= len(self.classes)) & (values < UNLABELLED)]
            if bad.size:
                raise ValueError(f"label map {i} holds {bad.tolist()}, outside the {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.images)

    def __add__(self, other: TrainingSet) -> TrainingSet:
        """Both sets over the union of their classes (this set's first)."""
        classes = self.classes + [c for c in other.classes if c not in self.classes]
        table = np.arange(256, dtype=np.uint8)
        table[: len(other.classes)] = [classes.index(c) for c in other.classes]
        labels = self.labels + [table[lab] for lab in other.labels]
        return TrainingSet(self.images + other.images, labels, classes)


def check_split(classes: Sequence[str], unseen: Sequence[str]) -> list[str]:
    """The seen classes, after checking that `unseen` is a proper, non-empty subset of `classes`."""
    unknown = [c for c in unseen if c not in classes]
    if unknown:
        raise ValueError(f"unseen classes {unknown} are not among the dataset's classes {list(classes)}")
    if len(set(unseen)) != len(unseen):
        raise ValueError(f"duplicate unseen classes: {list(unseen)}")
    seen = [c for c in classes if c not in unseen]
    if not seen:
        raise ValueError("every class is unseen; a seen/unseen split needs at least one seen class")
    return seen


def split_masks(masks: Sequence[np.ndarray], classes: Sequence[str], unseen: Sequence[str]) -> list[np.ndarray]:
    """(H, W) masks over `classes` (255 ignore) -> masks over seen + unseen order: seen kept, unseen UNLABELLED."""
    seen = check_split(classes, unseen)
    table = np.full(256, IGNORE, np.uint8)
    for i, name in enumerate(classes):
        table[i] = seen.index(name) if name in seen else UNLABELLED
    return [table[np.asarray(m).astype(np.int64)] for m in masks]


def clip_mean_std(visual: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The image tower's normalisation (3, 1, 1) mean and std (OpenAI's unless the model says otherwise)."""
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = torch.tensor(cfg.get("mean", OPENAI_MEAN)).view(3, 1, 1)
    std = torch.tensor(cfg.get("std", OPENAI_STD)).view(3, 1, 1)
    return mean, std


def pixel_mean_std(mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """A normalisation given as three means and stds of pixels in [0, 1] -> (3, 1, 1) float64 tensors;
    ValueError unless three of each, stds positive."""
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"pixel normalisation needs 3 means and 3 positive stds, got {list(mean)}, {list(std)}")
    return torch.tensor(mean, dtype=torch.float64).view(3, 1, 1), torch.tensor(std, dtype=torch.float64).view(3, 1, 1)


def to_pixels(
    images: np.ndarray | torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> normalised (B, 3, H, W) in `dtype` (float32 unless asked)."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).to(dtype).div_(255)
    return (x - mean.to(dtype)) / std.to(dtype)


def photometric_distortion(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """mmseg's PhotoMetricDistortion (the official recipe's) on a (3, H, W) image in [0, 1], each step with chance
    1/2: brightness +-32/255, contrast x[0.5, 1.5] (before or after the colour steps, at random), saturation
    x[0.5, 1.5], hue +-18 OpenCV units (+-36 degrees). Colour operations are torchvision's."""
    from torchvision.transforms.v2 import functional as TF

    def coin() -> bool:
        return bool(torch.rand((), generator=gen) < 0.5)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=gen))

    def contrast(x: torch.Tensor) -> torch.Tensor:
        return (x * uniform(0.5, 1.5)).clamp(0, 1) if coin() else x

    if coin():
        image = (image + uniform(-32 / 255, 32 / 255)).clamp(0, 1)
    contrast_first = coin()
    if contrast_first:
        image = contrast(image)
    if coin():
        image = TF.adjust_saturation(image, uniform(0.5, 1.5))
    if coin():
        image = TF.adjust_hue(image, uniform(-0.1, 0.1))
    return image if contrast_first else contrast(image)


def augment(
    image: torch.Tensor,
    label: torch.Tensor,
    crop: int,
    scale_range: tuple[float, float],
    flip: bool,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale, crop to (crop, crop) (padding: zero pixels, IGNORE labels) and flip of (3, H, W), (H, W)."""
    lo, hi = scale_range
    scale = lo + (hi - lo) * float(torch.rand((), generator=gen))
    h, w = label.shape
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    if (sh, sw) != (h, w):
        image = F.interpolate(image[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
        label = F.interpolate(label[None, None].float(), size=(sh, sw), mode="nearest")[0, 0].long()
    ph, pw = max(0, crop - sh), max(0, crop - sw)
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph))
        label = F.pad(label, (0, pw, 0, ph), value=IGNORE)
    top = int(torch.randint(0, image.shape[1] - crop + 1, (), generator=gen))
    left = int(torch.randint(0, image.shape[2] - crop + 1, (), generator=gen))
    image, label = image[:, top : top + crop, left : left + crop], label[top : top + crop, left : left + crop]
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        image, label = image.flip(-1), label.flip(-1)
    return image, label
