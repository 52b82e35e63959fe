"""Dense encoders: one L2-normalised feature per patch of an image, from a CLIP (MaskCLIP) or any timm ViT."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.core.registry import Registry


@runtime_checkable
class DenseEncoder(Protocol):
    """Anything that turns (H, W, 3) uint8 images into L2-normalised patch features (N, h, w, d) float32."""

    name: str
    input_size: int
    dim: int

    def encode(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Patch features (N, h, w, d) float32, L2-normalised over d."""
        ...


def check_images(images: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """The images as a list of (H, W, 3) uint8 arrays; ValueError for anything else."""
    out = list(images)
    if not out:
        raise ValueError("no images to encode")
    for i, image in enumerate(out):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image {i} must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    return out


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, 3) image (no resampling)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top : top + side, left : left + side]


def square_pixels(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Short side resized to `size`, centre crop: (N, 3, size, size) float pixels in [0, 1]."""
    out = []
    for image in images:
        x = torch.from_numpy(np.array(centre_square(image))).permute(2, 0, 1)[None].float() / 255
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
        out.append(x)
    return torch.cat(out)  # (N, 3, size, size)


CLIP_PATHS = ("value", "tokens", "penultimate")


def penultimate_tokens(visual: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Patch tokens entering a CLIP ViT's last block, normed by its ln_1: (B, gh, gw, width), L2-normalised."""
    from pipeline.core.clip_dense import vit_tokens_before_last_block

    x, (gh, gw) = vit_tokens_before_last_block(visual, pixels)
    x = visual.transformer.resblocks[-1].ln_1(x)[:, 1:]  # (B, gh * gw, width)
    return F.normalize(x.float(), dim=-1).reshape(pixels.shape[0], gh, gw, -1)


class ClipDenseEncoder:
    """Dense features of an open_clip ViT: MaskCLIP's value path, the regular token path, or the penultimate tokens.

    "value" and "tokens" live in the joint image-text space; "penultimate" (the image tower's own patch tokens, as a
    self-supervised ViT's last-block tokens would be used) does not, and cannot serve as LGC saliency.
    """

    def __init__(self, loaded: Any, path: str = "value", batch_size: int = 64) -> None:
        if path not in CLIP_PATHS:
            raise ValueError(f"unknown dense path {path!r}; choose from {list(CLIP_PATHS)}")
        self.loaded = loaded
        self.path = path
        self.batch_size = batch_size
        self.input_size = int(loaded.image_size)
        width = int(loaded.model.visual.transformer.resblocks[-1].ln_1.weight.shape[0])
        self.dim = width if path == "penultimate" else int(loaded.embed_dim)
        suffix = "" if path == "value" else f"-{path}"
        self.name = f"clip{suffix}:{loaded.ref}"

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Patch features (N, h, w, d) float32 in CLIP's joint space, L2-normalised."""
        from pipeline.core.clip_dense import clip_dense_features
        from pipeline.core.pixels import normalise_pixels

        images = [centre_square(im) for im in check_images(images)]
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            if len({im.shape for im in chunk}) == 1:
                pixels = normalise_pixels(self.loaded, np.stack(chunk))  # (B, 3, S, S)
            else:
                pixels = torch.cat([normalise_pixels(self.loaded, np.array(im)[None]) for im in chunk])
            visual = self.loaded.model.visual
            if self.path == "penultimate":
                out.append(penultimate_tokens(visual, pixels).cpu())
            else:
                out.append(clip_dense_features(visual, pixels, self.path).cpu())
        return torch.cat(out)  # (N, gh, gw, d)


def _load_timm_weights(model: torch.nn.Module, checkpoint: Path) -> None:
    """Load a local checkpoint (.pth/.pt/.bin/.safetensors; timm or official layouts) into a timm model."""
    import timm.models

    state = timm.models.load_state_dict(str(checkpoint))
    for key in ("model", "state_dict", "teacher"):  # official DINO / DeiT wrappers
        if isinstance(state.get(key), dict):
            state = state[key]
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    filter_fn = getattr(__import__(type(model).__module__, fromlist=["_"]), "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    missing, _unexpected = model.load_state_dict(state, strict=False)  # classifier heads are unexpected: fine
    if missing:
        raise ValueError(f"checkpoint {checkpoint} lacks {len(missing)} weights of the model, e.g. {missing[:3]}")


class TimmDenseEncoder:
    """Last-block patch tokens (after the final norm) of a timm ViT, prefix tokens dropped, L2-normalised."""

    def __init__(
        self,
        model_name: str,
        checkpoint: str | Path | None = None,
        input_size: int | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        **model_kwargs: Any,
    ) -> None:
        import timm

        if model_name not in timm.list_models() and model_name.split(".")[0] not in timm.list_models():
            raise ValueError(f"unknown timm model {model_name!r}; see timm.list_models()")
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"encoder checkpoint not found: {checkpoint}")
        model = timm.create_model(model_name, pretrained=False, num_classes=0, dynamic_img_size=True, **model_kwargs)
        if not hasattr(model, "num_prefix_tokens") or not hasattr(model, "patch_embed"):
            raise ValueError(f"timm model {model_name!r} is not a ViT (no patch tokens)")
        if checkpoint is not None:
            _load_timm_weights(model, Path(checkpoint))
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        cfg = model.pretrained_cfg or {}
        self.input_size = int(input_size or cfg.get("input_size", (3, 224, 224))[-1])
        self.mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)
        self.patch = int(model.patch_embed.patch_size[0])
        self.dim = int(model.num_features)
        self.name = f"timm:{model_name}"

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        """Patch features (N, h, w, d) float32, h = w = input_size // patch, L2-normalised."""
        images = check_images(images)
        side = self.input_size // self.patch
        out = []
        for start in range(0, len(images), self.batch_size):
            pixels = (square_pixels(images[start : start + self.batch_size], self.input_size) - self.mean) / self.std
            tokens = self.model.forward_features(pixels.to(self.device))  # (B, prefix + h * w, d), final norm applied
            patches = tokens[:, self.model.num_prefix_tokens :].float()
            assert patches.shape[1] == side * side, (patches.shape, side)
            out.append(F.normalize(patches, dim=-1).reshape(len(pixels), side, side, -1).cpu())
        return torch.cat(out)  # (N, h, w, d)


def _clip_encoder(path: str) -> Callable[..., DenseEncoder]:
    """Factory of the CLIP dense encoder reading `path` of the model given as `clip`."""

    def build(clip: Any = None, checkpoint: str | Path | None = None, **kwargs: Any) -> DenseEncoder:
        if clip is None:
            raise ValueError(f"encoder {'clip' if path == 'value' else 'clip-' + path!r} needs a loaded CLIP model")
        if checkpoint is not None:
            raise ValueError("--encoder-checkpoint applies to timm encoders; the CLIP comes from --model")
        return ClipDenseEncoder(clip, path=path, **kwargs)

    return build


def _timm_encoder(
    model_name: str, clip: Any = None, checkpoint: str | Path | None = None, **kwargs: Any
) -> DenseEncoder:
    """A timm ViT's last-block tokens (`clip` is not used)."""
    return TimmDenseEncoder(model_name, checkpoint=checkpoint, **kwargs)


DENSE_ENCODERS: Registry[DenseEncoder] = Registry("dense encoder")
DENSE_ENCODERS.add("clip", _clip_encoder("value"))  # MaskCLIP's value path
DENSE_ENCODERS.add("clip-tokens", _clip_encoder("tokens"))
DENSE_ENCODERS.add("clip-penultimate", _clip_encoder("penultimate"))
DENSE_ENCODERS.add("timm", _timm_encoder, argument="MODEL_NAME")


def create_dense_encoder(
    spec: str, clip: Any = None, checkpoint: str | Path | None = None, **kwargs: Any
) -> DenseEncoder:
    """A dense encoder from a spec: 'clip' (MaskCLIP value path), 'clip-tokens', 'clip-penultimate', 'timm:MODEL'."""
    return DENSE_ENCODERS.create(spec, clip=clip, checkpoint=checkpoint, **kwargs)
