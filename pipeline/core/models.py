"""Model references and loading: any open_clip architecture with a tag or local checkpoint, or the bundled toy CLIP."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

TOY_NAME = "toy"
TOY_ARCH = "coarchive-toy-vit"
TOY_WEIGHTS = "toy_clip.safetensors"
_CONFIGS_REGISTERED = False


def register_model_configs() -> None:
    """Register coarchive's own architectures (the toy ViT) with open_clip's config registry."""
    global _CONFIGS_REGISTERED
    if not _CONFIGS_REGISTERED:
        import open_clip

        open_clip.add_model_config(Path(str(resources.files("pipeline.core") / "model_configs")))
        _CONFIGS_REGISTERED = True


@dataclass(frozen=True)
class ModelRef:
    """An open_clip architecture plus a pretrained tag, a local checkpoint path, or the bundled toy weights."""

    name: str
    pretrained: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse 'toy', 'ARCH', 'ARCH:TAG' or 'ARCH:/path/to/checkpoint' into a ModelRef."""
        text = text.strip()
        if not text:
            raise ValueError("empty model reference; use 'toy', 'ARCH', 'ARCH:TAG' or 'ARCH:/path/ckpt'")
        if text == TOY_NAME:
            return cls(TOY_NAME)
        name, _, pretrained = text.partition(":")
        if name in ("local-dir", "hf-hub"):
            return cls(text)
        return cls(name, pretrained or None)

    @property
    def model_id(self) -> str:
        """A filesystem-safe identifier, so that embeddings of two models never share a folder."""
        if self.name == TOY_NAME and not self.pretrained:
            return TOY_NAME
        tag = self.pretrained or "random"
        if self.pretrained and os.path.sep in self.pretrained:
            digest = hashlib.sha1(str(Path(self.pretrained).resolve()).encode()).hexdigest()[:10]
            tag = f"{Path(self.pretrained).stem}-{digest}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.name}__{tag}")

    def __str__(self) -> str:
        return self.name if self.pretrained is None else f"{self.name}:{self.pretrained}"


@dataclass
class LoadedModel:
    """An open_clip model with its eval preprocessing, tokenizer and the reference it came from."""

    ref: ModelRef
    model: Any  # open_clip.CLIP
    preprocess: Any  # torchvision transform: PIL image -> (3, H, W) float tensor
    tokenizer: Any  # list[str] -> (n, context_length) int64
    device: torch.device

    @property
    def image_size(self) -> int:
        """Side of the square input the image tower expects."""
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def embed_dim(self) -> int:
        """Dimension of the joint image-text space."""
        return int(self.model.text_projection.shape[1])


def cache_dir() -> Path:
    """Where coarchive keeps expanded weights and other derived files (COARCHIVE_CACHE, else ~/.cache/coarchive)."""
    return Path(os.environ.get("COARCHIVE_CACHE", Path.home() / ".cache" / "coarchive"))


def toy_weights_path() -> Path:
    """The bundled compact fp16 toy weights inside the installed package."""
    return Path(str(resources.files("pipeline") / "toy" / "assets" / TOY_WEIGHTS))


def toy_checkpoint(source: Path | None = None) -> Path:
    """A full open_clip checkpoint for the toy model, expanded once from compact weights (default: the bundled ones)."""
    from pipeline.core.compact_weights import expand_compact_weights

    if source is not None and not Path(source).is_file():
        raise FileNotFoundError(f"toy weights not found: {source}")
    source = Path(source) if source else toy_weights_path()
    if not source.is_file():
        raise FileNotFoundError(f"bundled toy weights not found: {source} (train them with 'coarchive toy train')")
    digest = hashlib.sha1(source.read_bytes()).hexdigest()[:12]
    target = cache_dir() / "toy" / f"toy_clip_full_{digest}.safetensors"
    if not target.is_file():
        expand_compact_weights(source, target)
    return target


def needs_quick_gelu(name: str, pretrained: str | None) -> bool:
    """Whether a pretrained tag was trained with QuickGELU that `name`'s config lacks (OpenAI's ViT-B-16:openai).

    open_clip only warns about the mismatch and builds GELU, which changes every feature; the tag's own record wins.
    """
    import open_clip

    if not pretrained or name.startswith(("local-dir:", "hf-hub:")):
        return False
    tag_quick = bool(open_clip.get_pretrained_cfg(name, pretrained).get("quick_gelu", False))
    return tag_quick and not (open_clip.get_model_config(name) or {}).get("quick_gelu", False)


def load_model(ref: ModelRef | str, device: str | torch.device | None = None) -> LoadedModel:
    """Load `ref` through open_clip (offline for the toy model and local checkpoints), in eval mode."""
    import open_clip

    register_model_configs()
    ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name, pretrained = ref.name, ref.pretrained
    if name == TOY_NAME:
        name, pretrained = TOY_ARCH, str(toy_checkpoint(Path(pretrained) if pretrained else None))
    elif pretrained and (os.path.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors"))):
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"checkpoint not found: {pretrained}")
    if not name.startswith(("local-dir:", "hf-hub:")) and name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {name!r}; see open_clip.list_models()")
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, force_quick_gelu=needs_quick_gelu(name, pretrained)
    )
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return LoadedModel(ref, model, preprocess, tokenizer, device)
