"""Which model a command uses: --model, else COARCHIVE_MODEL, else the one model the data root was built with."""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.logs import get_logger
from pipeline.core.models import TOY_NAME, ModelRef

log = get_logger(__name__)

MODEL_ENV = "COARCHIVE_MODEL"
MODEL_RECORD = "model.json"  # embeddings/{model_id}/model.json: the reference the embeddings were made with


@dataclass(frozen=True)
class ModelChoice:
    """A model reference and where it came from, for the one line a command prints about it."""

    ref: ModelRef
    source: str

    def describe(self, command: str) -> str:
        """The line printed to stderr, e.g. "coarchive index: model toy (found in /data/embeddings)"."""
        return f"coarchive {command}: model {self.ref} ({self.source})"


def model_record(ref: ModelRef) -> dict:
    """What embeddings/{model_id}/model.json holds: the reference (checkpoint paths made absolute) and its id."""
    pretrained = ref.pretrained
    if pretrained and os.path.sep in pretrained:  # the id hashes the resolved path, so the absolute one keeps it
        pretrained = str(Path(pretrained).resolve())
    return {"model": str(ModelRef(ref.name, pretrained)), "model_id": ref.model_id}


def reference_of(root: Path, model_id: str) -> ModelRef | None:
    """The reference a model id under `root` stands for: recorded in model.json, else read back from the id."""
    record = root / "embeddings" / model_id / MODEL_RECORD
    if record.is_file():
        try:
            ref = ModelRef.parse(json.loads(record.read_text())["model"])
        except (ValueError, KeyError, TypeError):
            ref = None
        if ref is not None and ref.model_id == model_id:
            return ref
    if model_id == TOY_NAME:
        return ModelRef(TOY_NAME)
    name, sep, tag = model_id.rpartition("__")  # ids are NAME__TAG; an open_clip tag reads back, a checkpoint not
    if sep and (tag == "random" or tag in _pretrained_tags(name)):
        ref = ModelRef(name, None if tag == "random" else tag)
        if ref.model_id == model_id:
            return ref
    return None


def _pretrained_tags(name: str) -> list[str]:
    import open_clip

    try:
        return list(open_clip.list_pretrained_tags_by_model(name))
    except Exception:  # an architecture open_clip does not know
        return []


def models_under(root: Path, area: str, marker: str) -> list[str]:
    """Model ids with a folder ROOT/area/{model_id}/ holding something that matches the glob `marker`."""
    folder = root / area
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and next(p.glob(marker), None) is not None)


def resolve_model(
    explicit: str | None, root: str | Path | None = None, area: str = "", marker: str = "*", hint: str = ""
) -> ModelChoice:
    """--model wins, then COARCHIVE_MODEL, then the single model id under ROOT/area/; ValueError when none fits.

    With no `root` (the embed stage, which makes the first model folder), --model or COARCHIVE_MODEL is required.
    `hint` says which command would have made ROOT/area/ when nothing is found there.
    """
    if explicit:
        return ModelChoice(ModelRef.parse(explicit), "from --model")
    if os.environ.get(MODEL_ENV, "").strip():
        return ModelChoice(ModelRef.parse(os.environ[MODEL_ENV]), f"from {MODEL_ENV}")
    if root is None:
        raise ValueError(
            f"no model given: pass --model (e.g. ViT-B-16:openai, or toy for the toy world) or set {MODEL_ENV}"
        )
    folder = Path(root) / area
    found = models_under(Path(root), area, marker)
    if not found:
        made = f"; {hint}" if hint else ""
        raise ValueError(f"no model given and none found in {folder}{made}, or pass --model or set {MODEL_ENV}")
    if len(found) > 1:
        raise ValueError(f"several models in {folder}: {', '.join(found)}; choose one with --model or {MODEL_ENV}")
    ref = reference_of(Path(root), found[0])
    if ref is None:
        raise ValueError(
            f"found model id {found[0]!r} in {folder} but no record of its reference "
            f"({found[0]}/{MODEL_RECORD} under embeddings/); pass --model"
        )
    return ModelChoice(ref, f"found in {folder}")


def announced(choice: ModelChoice, command: str) -> str:
    """Say which model a command uses and where it came from (one line on stderr); return it."""
    log.info(choice.describe(command))
    return str(choice.ref)


def model_for_embed(explicit: str | None, command: str = "embed") -> str:
    """The model of a stage that makes embeddings: --model or COARCHIVE_MODEL, never a silent default."""
    return announced(resolve_model(explicit), command)


def model_of_embeddings(explicit: str | None, root: str | Path, command: str) -> str:
    """The model of a stage that reads ROOT/embeddings/{model_id}/ (index)."""
    choice = resolve_model(explicit, root, "embeddings", "*.parquet", "run 'coarchive embed' first")
    return announced(choice, command)


def model_of_index(explicit: str | None, root: str | Path, version: str, command: str) -> str:
    """The model of a stage that reads ROOT/index/{model_id}/{version}/ (query, archive, serve)."""
    marker = f"{glob.escape(version)}/index.json"
    return announced(resolve_model(explicit, root, "index", marker, "run 'coarchive index' first"), command)


def model_of_archives(explicit: str | None, root: str | Path, run: str | None, command: str) -> str:
    """The model of a stage that reads ROOT/archives/{model_id}/{run}/ (cosegment, archive diff)."""
    marker = f"{glob.escape(run)}/*" if run else "*/*"
    return announced(resolve_model(explicit, root, "archives", marker, "run 'coarchive archive' first"), command)
