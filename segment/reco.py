"""ReCo inference: sigmoid(cos(dense feature, bank reference)) x DenseCLIP saliency, argmax; optional dense CRF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from segment.bank import SegmentBank
from segment.cosegment import real
from segment.crf import CrfSettings, dense_crf
from segment.dense_encoders import CLIP_PATHS, ClipDenseEncoder, DenseEncoder, create_dense_encoder
from segment.segmenter import (
    Protocol,
    Segmentation,
    Segmenter,
    check_concepts,
    check_image,
    register_segmenter,
    size_batches,
)

SALIENCY_TEMPERATURE = 10.0  # ReCo's (and DenseCLIP's) sigmoid(10 * cos) saliency


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """The whole (H, W, 3) uint8 image resized (aspect not kept) to (size, size, 3) uint8; unchanged if already so."""
    if image.shape[:2] == (size, size):
        return image
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W), a writable copy
    x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def concept_maps(features: torch.Tensor, vectors: torch.Tensor, size: tuple[int, int], temperature: float = 1.0):
    """sigmoid(temperature * cos(patch, vector)) per vector, bilinearly upsampled: (N, C, H, W).

    features (N, h, w, d) L2-normalised; vectors (C, d) L2-normalised.
    """
    x = real(features)
    cos = torch.einsum("nhwd,cd->nchw", x, vectors.to(x.device, x.dtype))  # (N, C, h, w)
    return F.interpolate(torch.sigmoid(temperature * cos), size=size, mode="bilinear", align_corners=False)


def default_device() -> torch.device:
    """cuda when available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@register_segmenter("reco")
class ReCoSegmenter(Segmenter):
    """ReCo's inference on a segment bank: D_c = sigmoid(cos(f, r_c)), times sigmoid(10 cos(MaskCLIP f, t_c)).

    Images of any size are resized whole to the encoder's square input (aspect not kept; the toy world is square)
    and the maps are upsampled back to each image's own size. With `crf`, a softmax over the concepts of the product
    (as the official code) is refined by a dense CRF on the BGR image (as the official code); the returned scores are
    then the refined probabilities.
    """

    name = "reco"

    def __init__(
        self,
        bank: SegmentBank | str | Path,
        clip: Any = None,
        encoder: DenseEncoder | None = None,
        saliency: bool = True,
        crf: bool = False,
        device: str | torch.device | None = None,
        temperature: float = SALIENCY_TEMPERATURE,
        crf_settings: CrfSettings | None = None,
        batch_size: int = 32,
    ) -> None:
        self.bank = bank if isinstance(bank, SegmentBank) else SegmentBank.load(bank)
        self.device = torch.device(device) if device is not None else default_device()
        self.use_saliency, self.use_crf = bool(saliency), bool(crf)
        self.temperature = float(temperature)
        self.crf_settings = crf_settings or CrfSettings()
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = batch_size
        needs_clip = encoder is None or self.use_saliency
        self.clip = self._load_clip(clip) if needs_clip else clip
        self.encoder = encoder if encoder is not None else self._bank_encoder()
        if int(self.encoder.dim) != self.bank.dim:
            raise ValueError(
                f"encoder {self.encoder.name} gives {self.encoder.dim}-d features; bank has {self.bank.dim}"
            )
        self.saliency_encoder: ClipDenseEncoder | None = None
        self.text: torch.Tensor | None = None  # (C_bank, d_clip)
        if self.use_saliency:
            same = isinstance(self.encoder, ClipDenseEncoder) and self.encoder.path == "value"
            self.saliency_encoder = self.encoder if same else ClipDenseEncoder(self.clip)
            self.text = self._text_embeddings()
        self.protocol = Protocol("resize", size=int(self.encoder.input_size))

    def _load_clip(self, clip: Any) -> Any:
        """The LoadedModel given, or loaded from a model reference (the argument, else the bank's provenance)."""
        if clip is not None and not isinstance(clip, str):
            return clip
        ref = clip or self.bank.provenance.get("model")
        if not ref:
            raise ValueError("ReCo needs a CLIP (clip=LoadedModel or a model reference); the bank names none")
        from pipeline.core.models import load_model

        return load_model(ref, device=self.device)

    def _bank_encoder(self) -> DenseEncoder:
        """Recreate the dense encoder the bank was built with from its name, e.g. 'clip-penultimate:toy'."""
        spec, _, model = self.bank.encoder.partition(":")
        clip_specs = {"clip", *(f"clip-{p}" for p in CLIP_PATHS)}
        if spec not in clip_specs:
            raise ValueError(
                f"cannot recreate the bank's encoder {self.bank.encoder!r} (weights unknown); pass encoder=..."
            )
        if model and model != str(self.clip.ref):
            raise ValueError(f"the bank was built with CLIP {model!r}, but the CLIP given is {self.clip.ref}")
        return create_dense_encoder(spec, clip=self.clip)

    def _text_embeddings(self) -> torch.Tensor:
        """The bank's text embeddings (C, d_clip), or the CLIP's prompt-ensembled ones for banks without them."""
        text = self.bank.text_embeddings
        if text is None:
            from pipeline.core.text import text_embeddings

            text = text_embeddings(self.clip, self.bank.concepts)
        if text.shape[1] != int(self.clip.embed_dim):
            raise ValueError(f"bank text embeddings are {text.shape[1]}-d; the CLIP's space is {self.clip.embed_dim}-d")
        return text.float()

    @torch.no_grad()
    def score_batch(self, images: Sequence[np.ndarray], rows: list[int]) -> torch.Tensor:
        """ReCo's product scores (N, C, H, W) for same-sized images and bank rows `rows`."""
        h, w = images[0].shape[:2]
        side = int(self.encoder.input_size)
        squares = [square_resize(im, side) for im in images]
        feats = self.encoder.encode(squares).to(self.device)  # (N, gh, gw, d)
        scores = concept_maps(feats, self.bank.references[rows].to(self.device), (h, w))  # (N, C, H, W)
        if self.saliency_encoder is not None:
            same = self.saliency_encoder is self.encoder
            clip_feats = feats if same else self.saliency_encoder.encode(squares).to(self.device)  # (N, gh, gw, dc)
            scores = scores * concept_maps(clip_feats, self.text[rows], (h, w), self.temperature)
        return scores

    def predict_batch(self, images: Sequence[np.ndarray], concepts: Sequence[str]) -> list[Segmentation]:
        """Segment each (H, W, 3) uint8 image into `concepts` (any subset of the bank's, in the order given)."""
        concepts = check_concepts(concepts)
        rows = [self.bank.index(c) for c in concepts]
        images = [check_image(im) for im in images]
        out: list[Segmentation | None] = [None] * len(images)
        for chunk in size_batches(images, self.batch_size):
            scores = real(self.score_batch([images[i] for i in chunk], rows)).cpu()  # (B, C, H, W)
            for i, s in zip(chunk, scores, strict=True):
                out[i] = self._finish(images[i], concepts, s)
        return out  # type: ignore[return-value]

    def _finish(self, image: np.ndarray, concepts: list[str], scores: torch.Tensor) -> Segmentation:
        """Optional CRF on the concept-normalised scores (C, H, W), then the argmax labels."""
        if self.use_crf:  # as the official eval.py: a softmax over the concepts of the product, the image as BGR
            # (pydensecrf's permutohedral lattice is not exactly symmetric in the colour channels)
            bgr = np.ascontiguousarray(image[:, :, ::-1])
            scores = torch.from_numpy(dense_crf(bgr, torch.softmax(scores, 0), self.crf_settings))
        return Segmentation(concepts, scores.contiguous(), scores.argmax(0).numpy().astype(np.int64))
