"""A segment bank from one archive run: read each concept's archive, rebuild its text embedding, co-segment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from archives.archive import Archive, archive_images, list_archives
from segment.bank import SegmentBank
from segment.cosegment import ConceptImages, build_bank
from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder

DEFAULT_ENCODER = "clip-penultimate"


def prompt_embedding(loaded: Any, concept: str, prompts: list[str] | None) -> torch.Tensor:
    """A concept's text embedding (d,) float32: the mean of its normalised prompt embeddings, renormalised.

    Prompts holding '{}' are templates filled with the concept; without prompts, the model's own template set.
    """
    from pipeline.core.text import text_embeddings

    return text_embeddings(loaded, [concept], tuple(prompts) if prompts else None)[0]


def archive_text_embedding(loaded: Any, query: dict) -> torch.Tensor:
    """The text embedding (d,) the archive was retrieved with, rebuilt from its query.json.

    With a template set ('templates', as the archive builder writes): every term (name, synonyms) in every template
    plus the concept's own prompts, exactly as retrieval embedded them; otherwise `prompt_embedding` of its prompts.
    """
    if query.get("templates"):
        from archives.prompts import concept_embeddings
        from archives.registry import Concept

        concept = Concept(str(query["concept"]), tuple(query.get("synonyms") or ()), tuple(query.get("prompts") or ()))
        return torch.from_numpy(concept_embeddings(loaded, [concept], str(query["templates"]))[0])
    return prompt_embedding(loaded, str(query["concept"]), query.get("prompts"))


def select_archives(archives: list[Archive], names: list[str] | None) -> list[Archive]:
    """The archives of `names` in that order (all of them when None); ValueError naming any missing one."""
    if not names:
        return archives
    known = {a.concept: a for a in archives}
    missing = [c for c in names if c not in known]
    if missing:
        raise ValueError(f"no archive for {', '.join(missing)}; have {', '.join(known)}")
    return [known[c] for c in names]


def bank_from_run(
    loaded: Any,
    run_dir: Path | str,
    pool: Path | str | None = None,
    encoder: str = DEFAULT_ENCODER,
    encoder_checkpoint: str | None = None,
    lgc: bool = True,
    ce: bool = True,
    concepts: list[str] | None = None,
    k: int | None = None,
    progress: bool = False,
    seed_rule: str = "paper",
) -> tuple[SegmentBank, int]:
    """Co-segment the archives of archives/{model_id}/{run}/ into a bank; also return the number of images used.

    seed_rule: "paper" or "official" (the official code's seed scores; segment.cosegment.SEED_RULES).
    """
    if k is not None and k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    run_dir = Path(run_dir)
    archives = select_archives(list_archives(run_dir), concepts)
    inputs = []
    for archive in archives:
        ids, images = archive_images(archive, pool)
        if k is not None:
            ids, images = ids[:k], images[:k]
        text = archive_text_embedding(loaded, archive.query)
        inputs.append(ConceptImages(archive.concept, images, text, archive.context, ids, str(archive.path)))
    extra = {"device": loaded.device} if encoder.startswith("timm:") else {}
    dense = create_dense_encoder(encoder, clip=loaded, checkpoint=encoder_checkpoint, **extra)
    saliency = dense if isinstance(dense, ClipDenseEncoder) and dense.path == "value" else None
    if lgc and saliency is None:
        saliency = ClipDenseEncoder(loaded)
    provenance = {"model": str(loaded.ref), "model_id": loaded.ref.model_id, "run": run_dir.name}
    provenance["archives"] = str(run_dir)
    bank = build_bank(
        inputs, dense, saliency, lgc=lgc, ce=ce, progress=progress, provenance=provenance, seed_rule=seed_rule
    )
    return bank, sum(len(i.images) for i in inputs)
