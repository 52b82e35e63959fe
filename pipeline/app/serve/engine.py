"""The service's heavy state, built once per app: the CLIP, text and image queries, and cached segmenters."""

from __future__ import annotations

import inspect
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.app.serve import catalog
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.errors import DataError
from pipeline.app.serve.paths import check_tree, confined_relative
from pipeline.core.models import load_model
from pipeline.pool.query import Hit, search
from segment.segmenter import Segmentation, Segmenter, available_segmenters, check_concepts, segmenter_factory

SOURCES = ("bank", "checkpoint")  # segmenter parameters the service fills from folders under the data root
SERVICE_NEEDS = {"zegclip": {"checkpoint"}}  # else it wants model= and vocabulary= objects, which requests cannot give


def _reco_plus_checkpoint(folder: Path) -> bool:
    """Whether a folder holds what segment.reco_plus.load_model reads (config.json and model.pt)."""
    return (folder / "config.json").is_file() and (folder / "model.pt").is_file()


def _zegclip_checkpoint(folder: Path) -> bool:
    from segment.zegclip.checkpoint import has_checkpoint

    return has_checkpoint(folder)


CHECKPOINTS = {"reco-plus": _reco_plus_checkpoint, "zegclip": _zegclip_checkpoint}  # segmenter -> recogniser


@dataclass(frozen=True)
class SegmenterKey:
    """Which segmenter a request asks for; equal keys share one cached instance."""

    name: str
    bank: str | None = None
    checkpoint: str | None = None
    crf: bool = False
    saliency: bool = True


class Engine:
    """The loaded CLIP, the index it searches, and the segmenters built so far (at most `cached` kept)."""

    def __init__(self, config: ServeConfig, cached: int = 8) -> None:
        self.config = config
        self.root = config.root
        self.clip = load_model(config.model, device=config.device)
        self.model_id = self.clip.ref.model_id
        self.index_dir = self.root / "index" / self.model_id / config.version
        self.embeddings = self.root / "embeddings" / self.model_id
        self._segmenters: dict[SegmenterKey, tuple[Segmenter, tuple]] = {}  # key -> (segmenter, file stamp)
        self._cached = cached
        self._lock = threading.Lock()

    def index_info(self) -> dict | None:
        """The served index's index.json, or None when the root has no index for the model and version."""
        path = self.index_dir / "index.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _search(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        if self.index_info() is None:
            raise FileNotFoundError(f"no index {self.config.version!r} for model {self.model_id!r} in the data root")
        return search(self.index_dir, self.embeddings, queries, k)

    @torch.no_grad()
    def text_query(self, texts: list[str], k: int) -> list[list[Hit]]:
        """Top-k hits for each text, embedded as every other command embeds a word (pipeline.core.text)."""
        from pipeline.core.text import embed_words

        return self._search(embed_words(self.clip, texts), k)  # (q, d) float32

    @torch.no_grad()
    def image_query(self, image: np.ndarray, k: int) -> list[Hit]:
        """Top-k hits for one (H, W, 3) uint8 image."""
        pixels = self.clip.preprocess(Image.fromarray(image))[None].to(self.clip.device)  # (1, 3, S, S)
        features = F.normalize(self.clip.model.encode_image(pixels).float(), dim=-1)  # (1, d)
        return self._search(features.cpu().numpy(), k)[0]

    def segmenters(self) -> list[dict]:
        """Each registered segmenter with the folders it needs and those it can take ('bank', 'checkpoint'), whether
        the service can build it (usable) and the root holds what it needs (ready), and the root's checkpoints of it."""
        found = catalog.checkpoints(self.root, CHECKPOINTS)
        has_bank = any(b["model_id"] == self.model_id for b in catalog.banks(self.root, []))
        out = []
        for name in available_segmenters():
            accepted, required = _parameters(name)
            needs = (required | SERVICE_NEEDS.get(name, set())) & set(SOURCES)
            usable = required <= {*SOURCES, "clip", "device"}
            held = {"bank": has_bank, "checkpoint": bool(found.get(name))}
            out.append(
                {
                    "name": name,
                    "needs": sorted(needs),
                    "takes": sorted(accepted & set(SOURCES)),
                    "usable": usable,
                    "ready": usable and all(held[n] for n in needs),
                    "checkpoints": found.get(name, []),
                }
            )
        return out

    def segmenter(self, key: SegmenterKey) -> Segmenter:
        """The segmenter for `key`, built on first use with the app's CLIP and kept for later requests; built again
        when its bank or checkpoint files change on disk (a nightly run rewrote them)."""
        stamp = self._stamp(key)
        with self._lock:
            cached = self._segmenters.pop(key, None)
            if cached is None or cached[1] != stamp:
                cached = (self._build(key), stamp)
                if len(self._segmenters) >= self._cached:
                    self._segmenters.pop(next(iter(self._segmenters)))
            self._segmenters[key] = cached  # most recently used last
            return cached[0]

    def _stamp(self, key: SegmenterKey) -> tuple:
        """(name, inode, size, mtime) of the files in the bank and checkpoint folders: what a rebuild would read."""
        folders = []
        if key.bank is not None:
            folders.append(catalog.bank_folder(self.root, self.model_id, key.bank))
        if key.checkpoint is not None:
            folders.append(self._checkpoint_folder(key.checkpoint))
        return tuple(
            (path.name, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            for folder in folders
            if folder.is_dir()
            for path in sorted(folder.iterdir())
            if path.is_file() and (stat := path.stat())
        )

    def _checkpoint_folder(self, checkpoint: str) -> Path:
        """The checkpoint folder under the root, with no file in it leading out of the root."""
        folder = confined_relative(self.root, checkpoint, "checkpoint")
        if not folder.is_dir():
            raise FileNotFoundError(f"no checkpoint folder {checkpoint!r} in the data root")
        return check_tree(self.root, folder)

    def _build(self, key: SegmenterKey) -> Segmenter:
        accepted, required = _parameters(key.name)
        kwargs: dict = {}
        if key.bank is not None:
            kwargs["bank"] = catalog.bank_folder(self.root, self.model_id, key.bank)
        if key.checkpoint is not None:
            kwargs["checkpoint"] = self._checkpoint_folder(key.checkpoint)
        if "clip" in accepted:
            kwargs["clip"] = self.clip
        if "device" in accepted:
            kwargs["device"] = self.config.device
        if key.crf:
            kwargs["crf"] = True
        if not key.saliency:
            kwargs["saliency"] = False
        given = {n for n in ("bank", "checkpoint", "crf", "saliency") if n in kwargs}
        if given - accepted:
            raise ValueError(f"segmenter {key.name!r} takes no {', '.join(sorted(given - accepted))}")
        missing = sorted(required - set(kwargs))
        if missing:
            raise ValueError(f"segmenter {key.name!r} needs {', '.join(missing)}")
        try:
            return segmenter_factory(key.name)(**kwargs)
        except Exception as error:  # any failure to load files the root holds: corrupt, truncated, incompatible
            source = " and ".join(f"{n} {getattr(key, n)!r}" for n in SOURCES if getattr(key, n) is not None)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(
                f"segmenter {key.name!r} could not be loaded from {source or 'its defaults'}: {reason}"
            ) from error

    def segment(self, key: SegmenterKey, image: np.ndarray, concepts: list[str] | None) -> Segmentation:
        """Segment one (H, W, 3) uint8 image into `concepts` (default: the segmenter's own, else its bank's)."""
        segmenter = self.segmenter(key)
        if not concepts:
            concepts = list(getattr(segmenter, "concepts", None) or [])
        if not concepts and key.bank is not None:
            concepts = self._bank_concepts(key.bank)
        if not concepts:
            raise ValueError(f"segmenter {key.name!r} has no concepts of its own: give concepts=a,b,c or a bank")
        return segmenter.predict(image, check_concepts(concepts))

    def _bank_concepts(self, bank: str) -> list[str]:
        meta = json.loads((catalog.bank_folder(self.root, self.model_id, bank) / "bank.json").read_text())
        return list(meta["concepts"])


def _parameters(name: str) -> tuple[set[str], set[str]]:
    """Names a segmenter factory accepts, and those it requires (no default)."""
    factory = segmenter_factory(name)
    params = inspect.signature(factory).parameters.values()
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]
    return {p.name for p in named}, {p.name for p in named if p.default is inspect.Parameter.empty}


def _required(name: str) -> list[str]:
    return sorted(_parameters(name)[1])


def scale_down(image: np.ndarray, side: int) -> np.ndarray:
    """The (H, W, 3) uint8 image scaled so its longer side is at most `side` (unchanged if it already is)."""
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
