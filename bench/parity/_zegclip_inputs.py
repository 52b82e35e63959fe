"""The fixed inputs of the ZegCLIP parity check: a tiny CLIP shape, weights and images from a seed, the classes.

Weights come from numpy's legacy RandomState (its stream is frozen across numpy versions), one stream per
parameter name, so the test regenerates the official model's weights bit for bit from the names and shapes the
fixture stores, without the official code.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import torch

SEED = 18
ARCH = "coarchive-parity-zegclip-tiny"  # GELU, as open_clip's own "ViT-B-16"
ARCH_QUICK = f"{ARCH}-quickgelu"  # QuickGELU, as OpenAI's CLIP, the official code and "ViT-B-16-quickgelu"
TINY = {  # the official VOC structure at a size a CPU test runs in a second; the official code fixes none of it
    "image_size": 64,  # the official input_resolution and img_size (512 for VOC)
    "patch": 8,
    "width": 64,
    "layers": 3,
    "heads": 4,
    "embed_dim": 32,
    "text_width": 32,
    "text_heads": 4,
    "text_layers": 2,
    "context": 77,
    "vocab": 49408,  # OpenAI's BPE: the official tokenizer's ids
    "tokens": 4,  # prompt tokens (VOC 10)
    "decoder_layers": 3,
    "decoder_heads": 8,
    "stride": 53,  # 64 * 426 / 512, the official window stride at this crop
}
CLASSES = ("aeroplane", "bicycle", "bird", "pottedplant", "sheep", "tvmonitor")
SEEN = CLASSES[:3]  # the rest unseen: inductive inference subtracts 0.1 from the seen classes' scores
IMAGE_SHAPES = ((64, 64), (64, 117), (100, 80))  # one window, two windows across, two down
SMALL_SHAPE = (48, 48)  # smaller than the crop: the official head resizes its masks twice (see docs/parity)
MMSEG_MEAN = (123.675, 116.28, 103.53)  # the official configs' img_norm_cfg (RGB)
MMSEG_STD = (58.395, 57.12, 57.375)


def open_clip_config(quick_gelu: bool) -> dict:
    """open_clip's architecture JSON for the tiny CLIP, with QuickGELU (OpenAI's and the official code's) or GELU."""
    t = TINY
    return {
        "embed_dim": t["embed_dim"],
        "quick_gelu": quick_gelu,
        "vision_cfg": {
            "image_size": t["image_size"],
            "layers": t["layers"],
            "width": t["width"],
            "patch_size": t["patch"],
            "head_width": t["width"] // t["heads"],
        },
        "text_cfg": {
            "context_length": t["context"],
            "vocab_size": t["vocab"],
            "width": t["text_width"],
            "heads": t["text_heads"],
            "layers": t["text_layers"],
        },
    }


def register_tiny_arch(folder: Path) -> None:
    """Write the tiny architecture's two JSONs (ARCH with GELU, ARCH_QUICK) into `folder` and register them."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ARCH}.json").write_text(json.dumps(open_clip_config(False)))
    (folder / f"{ARCH_QUICK}.json").write_text(json.dumps(open_clip_config(True)))
    open_clip.add_model_config(folder)


def official_config(checkpoint_text: bool = True) -> dict:
    """Keyword arguments of the official ZegCLIP segmentor (the VOC zero-shot config at the tiny size)."""
    t = TINY
    seen = [CLASSES.index(c) for c in SEEN]
    return {
        "backbone": {
            "type": "VPTCLIPVisionTransformer",
            "patch_size": t["patch"],
            "width": t["width"],
            "output_dim": t["embed_dim"],
            "get_embeddings": True,
            "drop_path_rate": 0.1,
            "layers": t["layers"],
            "heads": t["heads"],
            "input_resolution": t["image_size"],
            "out_indices": [t["layers"] - 1],
            "num_tokens": t["tokens"],
            "prompt_dim": t["width"],
            "total_d_layer": t["layers"] - 1,
            "style": "pytorch",
        },
        "text_encoder": {
            "type": "CLIPTextEncoder",
            "context_length": t["context"],
            "vocab_size": t["vocab"],
            "embed_dim": t["embed_dim"],
            "transformer_width": t["text_width"],
            "transformer_heads": t["text_heads"],
            "transformer_layers": t["text_layers"],
            "style": "pytorch",
        },
        "decode_head": {
            "type": "ATMSingleHeadSeg",
            "img_size": t["image_size"],
            "in_channels": t["embed_dim"],
            "seen_idx": seen,
            "all_idx": list(range(len(CLASSES))),
            "channels": t["embed_dim"],
            "num_classes": len(seen),
            "num_layers": t["decoder_layers"],
            "num_heads": t["decoder_heads"],
            "use_proj": False,
            "use_stages": 1,
            "embed_dims": t["embed_dim"],
            "loss_decode": {
                "type": "SegLossPlus",
                "num_classes": len(seen),
                "dec_layers": t["decoder_layers"],
                "mask_weight": 100.0,
                "dice_weight": 1.0,
                "loss_weight": 1.0,
            },
        },
        "test_cfg": {"mode": "slide", "crop_size": (t["image_size"],) * 2, "stride": (t["stride"],) * 2},
        "pretrained": None,
        "pretrained_text": None,
        "context_length": t["context"],
        "class_names": list(CLASSES),
        "base_class": seen,
        "novel_class": [i for i in range(len(CLASSES)) if CLASSES[i] not in SEEN],
        "both_class": list(range(len(CLASSES))),
        "ft_backbone": False,
        "exclude_key": "prompt",
        "load_text_embedding": None,
    }


def seeded_tensor(name: str, shape: tuple[int, ...], seed: int = SEED) -> torch.Tensor:
    """A float64 tensor for parameter `name` from its own RandomState stream, scaled to keep activations sane:
    norms' weights near 1, biases and embeddings small, matrices 1 / sqrt(fan-in)."""
    rng = np.random.RandomState((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32)
    values = rng.standard_normal(size=shape)
    leaf = name.rsplit(".", 1)[-1]
    if len(shape) == 1:
        is_norm = any(part.startswith(("ln", "norm", "prompt_norm")) for part in name.split("."))
        values = 1.0 + 0.1 * values if is_norm and leaf == "weight" else 0.1 * values
    elif leaf in ("proj", "text_projection"):
        values = values / np.sqrt(shape[0])  # used as x @ proj
    elif "embedding" in leaf:
        values = 0.1 * values  # positional, class, token and prompt embeddings
    else:
        values = values / np.sqrt(int(np.prod(shape[1:])))
    return torch.from_numpy(values)


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, torch.Tensor]:
    """name -> seeded float64 tensor for every (name, shape); buffers named empty_weight keep the official values."""
    state = {}
    for name, shape in shapes.items():
        if name.endswith("empty_weight"):  # the loss's class weights: ones and eos_coef 0.1 last, not a parameter
            state[name] = torch.cat([torch.ones(shape[0] - 1), torch.tensor([0.1])]).double()
        else:
            state[name] = seeded_tensor(name, tuple(shape), seed)
    return state


def seeded_images(seed: int = SEED, shapes: tuple[tuple[int, int], ...] = IMAGE_SHAPES) -> list[np.ndarray]:
    """(H, W, 3) uint8 test images of `shapes`: smooth colour fields plus noise, so neighbouring pixels agree."""
    rng = np.random.RandomState(seed)
    out = []
    for h, w in shapes:
        coarse = rng.uniform(0, 255, size=(h // 8 + 2, w // 8 + 2, 3))
        rows = np.linspace(0, coarse.shape[0] - 1.001, h)
        cols = np.linspace(0, coarse.shape[1] - 1.001, w)
        r0, c0 = rows.astype(int), cols.astype(int)
        fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
        smooth = (
            coarse[r0][:, c0] * (1 - fr) * (1 - fc)
            + coarse[r0 + 1][:, c0] * fr * (1 - fc)
            + coarse[r0][:, c0 + 1] * (1 - fr) * fc
            + coarse[r0 + 1][:, c0 + 1] * fr * fc
        )
        out.append(np.clip(smooth + rng.normal(0, 12, size=smooth.shape), 0, 255).astype(np.uint8))
    return out


def mmseg_pixels(image: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) normalised as the official test pipeline does (mmseg's Normalize)."""
    x = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None]
    mean = torch.tensor(MMSEG_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(MMSEG_STD, dtype=torch.float64).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


def checksum(state: dict[str, torch.Tensor], images: list[np.ndarray]) -> str:
    """sha256 of the seeded weights (name order) and images: proves a rerun regenerated the same inputs."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    for image in images:
        digest.update(image.tobytes())
    return digest.hexdigest()
