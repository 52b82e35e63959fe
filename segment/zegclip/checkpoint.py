"""ZegCLIP checkpoint folders: trainable weights, vocabulary, recipe and training state (for resume)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from pipeline.core.io import atomic_path
from segment.zegclip.model import ModelConfig, ZegCLIP
from segment.zegclip.vocabulary import Vocabulary

WEIGHTS, VOCAB, META, STATE = "zegclip.pt", "vocabulary.pt", "config.json", "train_state.pt"
POSITIONS = "positional_embedding.pt"  # optional: the image tower's own positional embedding (official: 32 x 32)
FORMAT = 1


@dataclass
class CheckpointMeta:
    """What a checkpoint folder says about itself."""

    clip: str  # model reference of the frozen CLIP ('toy', 'ViT-B-16:openai', ...)
    model: ModelConfig
    train: dict[str, Any]  # the TrainConfig as a dict
    classes: list[str]  # the classes trained with labels or pseudo-labels (query order)
    pseudo_classes: list[str]  # classes whose pixels were pseudo-labelled (transductive)
    seen_bias: float  # subtracted from the sigmoid scores of `classes` at inference (official inductive: 0.1)
    step: int
    extra: dict[str, Any]

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {**asdict(self), "model": asdict(self.model), "format": FORMAT}

    @classmethod
    def from_json(cls, data: dict) -> CheckpointMeta:
        """The meta that `to_json` wrote."""
        data = {k: v for k, v in data.items() if k != "format"}
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise ValueError(f"unknown checkpoint keys {sorted(set(data) - known)}")
        return cls(**{**data, "model": ModelConfig(**data["model"])})


def has_checkpoint(folder: Path | str) -> bool:
    """Whether `folder` holds a complete ZegCLIP checkpoint."""
    return all((Path(folder) / name).is_file() for name in (WEIGHTS, VOCAB, META))


def read_meta(folder: Path | str) -> CheckpointMeta:
    """The meta of a checkpoint folder; FileNotFoundError if it is not one."""
    if not has_checkpoint(folder):
        raise FileNotFoundError(f"no ZegCLIP checkpoint ({WEIGHTS}, {VOCAB}, {META}) in {folder}")
    return CheckpointMeta.from_json(json.loads((Path(folder) / META).read_text()))


def save_checkpoint(
    folder: Path | str, model: ZegCLIP, vocab: Vocabulary, meta: CheckpointMeta, state: dict | None = None
) -> None:
    """Write weights, vocabulary, optional training state, then the meta last (its presence marks completion)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        torch.save(model.trainable_state_dict(), tmp)
    vocab.save(folder / VOCAB)
    if state is not None:
        with atomic_path(folder / STATE) as tmp:
            torch.save(state, tmp)
    with atomic_path(folder / META) as tmp:
        tmp.write_text(json.dumps(meta.to_json(), indent=2))


def load_weights(folder: Path | str, model: ZegCLIP) -> None:
    """Load a checkpoint's trainable weights into `model`."""
    read_meta(folder)
    model.load_trainable_state_dict(torch.load(Path(folder) / WEIGHTS, map_location="cpu", weights_only=True))


def load_zegclip(folder: Path | str, clip=None, device: str | torch.device = "cpu"):
    """(model in eval mode, vocabulary, meta, LoadedModel) from a checkpoint; the CLIP is loaded unless given."""
    meta = read_meta(folder)
    if clip is None:
        from pipeline.core.models import load_model

        clip = load_model(meta.clip, device=device)
    if meta.extra.get("quick_gelu"):  # an imported official checkpoint: OpenAI's activation, whatever the config says
        from segment.zegclip.official import use_quick_gelu

        use_quick_gelu(clip.model)
    positions = Path(folder) / POSITIONS
    if positions.is_file():
        table = torch.load(positions, map_location="cpu", weights_only=True)  # (1 + g * g, width)
        clip.model.visual.positional_embedding = torch.nn.Parameter(table.to(device), requires_grad=False)
    model = ZegCLIP(clip.model.visual, meta.model)
    load_weights(folder, model)
    return model.to(device).eval(), Vocabulary.load(Path(folder) / VOCAB), meta, clip
