"""The fixed inputs of the ReCo parity check: a tiny DeiT shape, its weights, images and stage features from a seed.

Everything comes from numpy's legacy RandomState (its stream is frozen across numpy versions), so the fixture test
regenerates the inputs bit for bit without the official code; the fixture stores checksums to prove it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

SEED = 18
# DeiT-S/16-SIN's structure (distilled: CLS and distillation tokens, qkv bias, LayerNorm eps 1e-6) at a CPU test's
# size; the official DistilledVisionTransformer takes every one of these as an argument.
TINY = {"img_size": 48, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3, "mlp_ratio": 4}
TIMM_NAME = "deit_small_distilled_patch16_224"  # the timm architecture coarchive loads an official DeiT checkpoint into
GRID = TINY["img_size"] // TINY["patch_size"]  # 6: the dense feature grid
CLIP_GRID, CLIP_DIM = 4, 16  # the DenseCLIP feature grid (coarser than GRID: LGC resizes it) and width
K = 5  # archive images per concept
TARGETS = ("cat", "dog", "sky")  # the inference concepts; "sky" is also a context concept
CONTEXT = ("sky", "road")  # context concepts, built first in this order (the official default is 5 of them)
CONCEPTS = ("cat", "dog", "sky", "road")  # coarchive's bank: every archive, context ones included
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _rng(*names: str) -> np.random.RandomState:
    """A RandomState of its own for each name path, so adding an input never shifts another."""
    return np.random.RandomState((SEED * 1_000_003 + zlib.crc32("/".join(names).encode())) % 2**32)


def checksum(array: np.ndarray | torch.Tensor) -> int:
    """crc32 of an array's bytes: equal inputs on both sides, checked before any comparison."""
    a = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    return zlib.crc32(np.ascontiguousarray(a).tobytes())


def image(*names: str) -> np.ndarray:
    """A (48, 48, 3) uint8 image: 4x4 blocks of flat colour with a little integer noise (CRF edges to follow)."""
    rng = _rng("image", *names)
    side = TINY["img_size"]
    blocks = rng.randint(0, 256, size=(4, 4, 3))
    flat = np.repeat(np.repeat(blocks, side // 4, 0), side // 4, 1)
    return np.clip(flat + rng.randint(-6, 7, size=flat.shape), 0, 255).astype(np.uint8)


def archive_images(concept: str) -> list[np.ndarray]:
    """The K archive images of `concept`."""
    return [image("archive", concept, str(i)) for i in range(K)]


def query_image() -> np.ndarray:
    """The image segmented at inference."""
    return image("query")


def encoder_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """float32 weights for every named shape: unit-scale fan-in Gaussians, LayerNorm gains near 1, small biases."""
    state = {}
    for name, shape in sorted(shapes.items()):
        w = _rng("weight", name).standard_normal(shape)
        if name.endswith("bias"):
            w = 0.02 * w
        elif "norm" in name:
            w = 1 + 0.2 * w
        elif name in ("cls_token", "dist_token", "pos_embed"):
            w = 0.5 * w
        else:
            w = w / np.sqrt(np.prod(shape[1:]))
        state[name] = torch.from_numpy(w.astype(np.float32))
    return state


def pixels(images: list[np.ndarray]) -> torch.Tensor:
    """ImageNet-normalised float32 pixels (N, 3, H, W), as the official datasets hand them to both networks."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def official_crf_image(img: np.ndarray) -> np.ndarray:
    """The (H, W, 3) uint8 image the official CRF sees: normalised as `pixels`, un-normalised, times 255, truncated
    (its torchvision to_pil_image round trip; about 15% of the values come back one lower)."""
    x = pixels([img])[0]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x * std + mean) * 255).byte().permute(1, 2, 0).numpy()


@dataclass
class StageInputs:
    """float64 inputs of the isolated stages: per image, encoder features and DenseCLIP features; per concept, text."""

    raw: dict[str, torch.Tensor]  # image key -> (GRID, GRID, D) raw encoder features (final-norm tokens: not unit)
    clip: dict[str, torch.Tensor]  # image key -> (CLIP_GRID, CLIP_GRID, CLIP_DIM), unit length
    text: dict[str, torch.Tensor]  # concept -> (CLIP_DIM,), unit length

    def unit(self, key: str) -> torch.Tensor:
        """The L2-normalised encoder features of one image (what a coarchive dense encoder returns)."""
        return torch.nn.functional.normalize(self.raw[key], dim=-1)


def image_key(img: np.ndarray) -> str:
    """The name an image's stage features are filed under: the hex crc32 of its bytes."""
    return f"{zlib.crc32(np.ascontiguousarray(img).tobytes()):08x}"


def stage_inputs() -> StageInputs:
    """Features with something to find: each concept's archive shares a planted pattern at one spot per image."""
    d = TINY["embed_dim"]
    raw, clip, text = {}, {}, {}
    for concept in CONCEPTS:
        rng = _rng("pattern", concept)
        pattern = rng.standard_normal(d)
        t = rng.standard_normal(CLIP_DIM)
        text[concept] = torch.from_numpy(t / np.linalg.norm(t))
        for i, img in enumerate(archive_images(concept)):
            r = _rng("features", concept, str(i))
            f = r.standard_normal((GRID, GRID, d))
            y, x = r.randint(GRID), r.randint(GRID)
            f[y, x] += 1.5 * pattern
            f *= 0.5 + r.random_sample((GRID, GRID, 1))  # token norms vary, as LayerNorm outputs do
            c = r.standard_normal((CLIP_GRID, CLIP_GRID, CLIP_DIM)) + 0.8 * t
            raw[image_key(img)] = torch.from_numpy(f)
            clip[image_key(img)] = torch.from_numpy(c / np.linalg.norm(c, axis=-1, keepdims=True))
    r = _rng("features", "query")
    key = image_key(query_image())
    f = r.standard_normal((GRID, GRID, d))
    for concept in CONCEPTS:  # each concept's pattern in one quadrant, so the label map has regions to agree on
        q = CONCEPTS.index(concept)
        f[(q // 2) * 3 : (q // 2) * 3 + 3, (q % 2) * 3 : (q % 2) * 3 + 3] += 1.5 * _rng(
            "pattern", concept
        ).standard_normal(d)
    raw[key] = torch.from_numpy(f * (0.5 + r.random_sample((GRID, GRID, 1))))
    c = r.standard_normal((CLIP_GRID, CLIP_GRID, CLIP_DIM))
    clip[key] = torch.from_numpy(c / np.linalg.norm(c, axis=-1, keepdims=True))
    return StageInputs(raw, clip, text)
