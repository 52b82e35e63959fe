"""The `zegclip` segmenter (registered on import): per-class sigmoids over sliding windows, seen-class bias."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from segment.eval_protocol import window_starts
from segment.segmenter import (
    Protocol,
    Segmentation,
    Segmenter,
    check_concepts,
    check_image,
    register_segmenter,
    size_batches,
)
from segment.zegclip.data import clip_mean_std, pixel_mean_std, to_pixels
from segment.zegclip.model import ZegCLIP
from segment.zegclip.vocabulary import TEMPLATES, Vocabulary

STRIDE_RATIO = 426 / 512  # official: 512 windows every 426 pixels


@register_segmenter("zegclip")
class ZegCLIPSegmenter(Segmenter):
    """ZegCLIP from a checkpoint folder (or a model and vocabulary in memory).

    Each image is cut into `crop_size` windows every `stride` pixels (one window if it fits); a window whose
    sides are not multiples of the patch size is padded at the bottom and right and cropped back. Scores are the
    per-class sigmoids, minus `seen_bias` on the classes trained with labels (official inductive inference),
    averaged where windows overlap. Concepts outside the vocabulary raise ValueError; `concepts=[...]` adds
    names to it (embedded by the CLIP's text tower with `templates`: the checkpoint's own, else TEMPLATES).
    Pixels are normalised with `normalisation` ((mean, std) of [0, 1] pixels), else the checkpoint's (an imported
    official one: mmseg's ImageNet statistics), else the CLIP's own. A float64 model runs in float64.
    """

    name = "zegclip"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        clip=None,
        model: ZegCLIP | None = None,
        vocabulary: Vocabulary | None = None,
        concepts: Sequence[str] | None = None,
        biased: Sequence[str] = (),
        seen_bias: float | None = None,
        crop_size: int | None = None,
        stride: int | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 8,
        templates: Sequence[str] | None = None,
        normalisation: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        if checkpoint is not None:
            from segment.zegclip.checkpoint import load_zegclip

            model, vocabulary, meta, clip = load_zegclip(checkpoint, clip, self.device)
            biased = meta.classes
            seen_bias = meta.seen_bias if seen_bias is None else seen_bias
            trained_crop = int(meta.train.get("crop_size") or 0)
            templates = templates or tuple(meta.extra.get("templates") or TEMPLATES)  # official imports: their own
            if normalisation is None and "pixel_mean" in meta.extra:  # official imports: mmseg's ImageNet statistics
                normalisation = (meta.extra["pixel_mean"], meta.extra["pixel_std"])
        elif model is None or vocabulary is None:
            raise ValueError("ZegCLIP needs a checkpoint folder, or both model= and vocabulary=")
        self.model = model.to(self.device).eval()
        self.clip = clip
        if concepts:
            if clip is None:
                raise ValueError("adding concepts to the vocabulary needs the CLIP (clip=LoadedModel)")
            vocabulary = vocabulary.extended(clip, check_concepts(concepts), templates or TEMPLATES)
        if vocabulary.dim != self.model.dim:
            raise ValueError(f"vocabulary is {vocabulary.dim}-d, the model's joint space {self.model.dim}-d")
        self.vocabulary = vocabulary
        self.biased = set(biased)
        self.seen_bias = float(seen_bias or 0.0)
        visual = self.model.encoder.visual
        native = visual.image_size
        native = int(native[0] if isinstance(native, (tuple, list)) else native)
        if crop_size is None and checkpoint is not None:
            crop_size = max(trained_crop, native)  # the training crop (official 512), never below the CLIP's own
        self.crop_size = int(crop_size or native)
        self.stride = int(stride or max(1, round(self.crop_size * STRIDE_RATIO)))
        if self.crop_size < 1 or self.stride < 1:
            raise ValueError(f"crop_size and stride must be positive, got {self.crop_size}, {self.stride}")
        self.patch = self.model.encoder.patch_size
        self.mean, self.std = clip_mean_std(visual) if normalisation is None else pixel_mean_std(*normalisation)
        self.protocol = Protocol("slide", size=self.crop_size, stride=self.stride)

    @property
    def concepts(self) -> list[str]:
        """The concepts this segmenter can segment."""
        return list(self.vocabulary.concepts)

    @torch.no_grad()
    def window_scores(self, windows: np.ndarray, text: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Scores (N, C, h, w) of same-sized windows (N, h, w, 3) uint8: sigmoid(mask logits) - bias (C,)."""
        n, h, w = windows.shape[:3]
        dtype = torch.float64 if self.model.encoder.prompt_embeddings.dtype == torch.float64 else torch.float32
        pixels = to_pixels(windows, self.mean, self.std, dtype)  # (N, 3, h, w)
        ph, pw = -h % self.patch, -w % self.patch
        if ph or pw:
            pixels = F.pad(pixels, (0, pw, 0, ph))
        out = []
        for start in range(0, n, self.batch_size):
            logits = self.model(pixels[start : start + self.batch_size].to(self.device), text)  # (B, C, h', w')
            scores = logits[:, :, :h, :w].to(dtype).sigmoid().cpu()
            out.append(scores - bias.to(dtype)[None, :, None, None])
        return torch.cat(out)

    def score_images(self, images: np.ndarray, concepts: list[str]) -> torch.Tensor:
        """Scores (N, C, H, W) of same-sized images (N, H, W, 3), windows averaged where they overlap."""
        n, height, width = images.shape[:3]
        text = self.vocabulary.embeddings(concepts).to(self.device)  # (C, d)
        bias = torch.tensor([self.seen_bias if c in self.biased else 0.0 for c in concepts], dtype=torch.float64)
        size = self.crop_size
        boxes = [
            (top, left, min(size, height), min(size, width))
            for top in window_starts(height, size, self.stride)
            for left in window_starts(width, size, self.stride)
        ]
        if len(boxes) == 1:
            return self.window_scores(images, text, bias)
        total = count = None
        for top, left, h, w in boxes:
            scores = self.window_scores(images[:, top : top + h, left : left + w], text, bias)
            if total is None:
                total = scores.new_zeros(n, len(concepts), height, width)
                count = scores.new_zeros(height, width)
            total[:, :, top : top + h, left : left + w] += scores
            count[top : top + h, left : left + w] += 1
        return total / count

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        """Segment each (H, W, 3) uint8 image into `concepts` (any of the vocabulary, in the order given)."""
        concepts = check_concepts(concepts)
        for name in concepts:
            self.vocabulary.index(name)
        images = [check_image(im) for im in images]
        out: list[Segmentation | None] = [None] * len(images)
        for chunk in size_batches(images, self.batch_size):
            scores = self.score_images(np.stack([images[i] for i in chunk]), concepts)  # (B, C, H, W)
            for i, s in zip(chunk, scores, strict=True):
                out[i] = Segmentation(concepts, s.contiguous(), s.argmax(0).numpy().astype(np.int64))
        return out  # type: ignore[return-value]
