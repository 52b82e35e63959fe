"""The device side of the shard loader: a batch to one (n, 3, S, S) tensor on the model's device.

CPU-preprocessed rows are pinned and copied without blocking; JPEGs are decoded in one batched
`torchvision.io.decode_jpeg(device=...)` call (nvJPEG on CUDA) and resized, cropped and normalised there as
open_clip's eval transform does on the CPU. On a CPU device the same code runs torchvision's CPU decoder: the
twin that the tests exercise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode

from pipeline.core.loader import LoadedBatch
from pipeline.core.logs import get_logger
from pipeline.core.shard_reader import decode_upright

log = get_logger(__name__)


@dataclass(frozen=True)
class PixelSpec:
    """What the model's eval transform does: shortest side to `size`, centre crop, scale to [0, 1], normalise."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"

    @classmethod
    def of(cls, visual: torch.nn.Module, size: int) -> PixelSpec | None:
        """The spec of an open_clip image tower, or None when its transform is not shortest-side-and-crop."""
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        if cfg.get("resize_mode", "shortest") != "shortest" or cfg.get("interpolation", "bicubic") not in (
            "bicubic",
            "bilinear",
        ):
            return None
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        mean = tuple(cfg.get("mean", OPENAI_DATASET_MEAN))
        std = tuple(cfg.get("std", OPENAI_DATASET_STD))
        return cls(size, mean, std, cfg.get("interpolation", "bicubic"))


def preprocess_tensors(images: list[torch.Tensor], spec: PixelSpec) -> torch.Tensor:
    """(3, H, W) uint8 images, any sizes, on one device -> (n, 3, S, S) float32 normalised pixels there."""
    if not images:
        raise ValueError("no images to preprocess")
    device = images[0].device
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    mode = InterpolationMode.BICUBIC if spec.interpolation == "bicubic" else InterpolationMode.BILINEAR
    out = torch.empty((len(images), 3, spec.size, spec.size), dtype=torch.float32, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-2:]), []).append(i)
    for rows in groups.values():  # images of one size are resized together
        stack = torch.stack([images[i] for i in rows])  # (g, 3, H, W) uint8
        resized = TF.resize(stack, [spec.size], interpolation=mode, antialias=True)  # shortest side -> S, uint8
        cropped = TF.center_crop(resized, [spec.size, spec.size])
        out[rows] = cropped.float().div_(255)
    return out.sub_(mean).div_(std)


def decode_jpegs(jpegs: list[bytes], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG bytes -> (3, H, W) uint8 RGB on `device`, one batched call; None for an image the decoder refuses."""
    if not jpegs:
        return []
    data = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)  # torchvision 0.29: torchcodec
        try:
            return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:  # one bad image fails the batch: decode one by one to find it
            out: list[torch.Tensor | None] = []
            for tensor in data:
                try:
                    out.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(None)
            return out


def batch_to_device(
    batch: LoadedBatch, device: torch.device, spec: PixelSpec | None, transform=None
) -> tuple[torch.Tensor, dict[int, str]]:
    """The batch's (m, 3, S, S) float32 pixels on `device` and {row: reason} for rows dropped (JPEGs nothing decodes).

    A JPEG the device decoder refuses is decoded on the CPU with `transform` instead; only one that nothing can
    decode is dropped, its row left out of the returned tensor.
    """
    if not batch.jpeg_rows:  # the CPU path: the tensor as the workers made it
        return _to_device(batch.pixels, device), {}
    if spec is None:
        raise ValueError("this model's transform cannot run on the device (not shortest-side resize and crop)")
    n = len(batch)
    out = torch.empty((n, 3, spec.size, spec.size), dtype=torch.float32, device=device)
    if batch.cpu_rows:
        rows = torch.tensor(batch.cpu_rows, device=device)
        out[rows] = _to_device(batch.pixels, device)
    decoded = decode_jpegs(batch.jpegs, device)
    good = [(row, image) for row, image in zip(batch.jpeg_rows, decoded, strict=True) if image is not None]
    if good:
        out[torch.tensor([r for r, _ in good], device=device)] = preprocess_tensors([i for _, i in good], spec)
    dropped: dict[int, str] = {}
    for row, image, data in zip(batch.jpeg_rows, decoded, batch.jpegs, strict=True):
        if image is not None:
            continue
        image, reason = decode_upright(data)
        if image is None or transform is None:
            dropped[row] = reason or "not a decodable image"
            continue
        out[row] = transform(image).to(device)
    if dropped:
        keep = torch.tensor([r for r in range(n) if r not in dropped], device=device)
        out = out[keep]
    return out, dropped


def _to_device(pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on `device`: unchanged on the CPU, through page-locked memory without blocking on CUDA."""
    if device.type != "cuda":
        return pixels
    if not pixels.is_pinned():
        pixels = pixels.pin_memory()
    return pixels.to(device, non_blocking=True)
