"""Rebuild only the bank rows whose archives changed: per-concept fingerprints, the concepts to co-segment again,
and the merge of rebuilt rows with the baseline bank's rows.

A concept's row depends on its own archive (items and query) and, with context elimination, on the references of
the context concepts built before it. So a changed context concept rebuilds every row; otherwise the changed
concepts are rebuilt together with all context concepts, in the full build's order, which gives bit-identical rows.
"""

from __future__ import annotations

from pathlib import Path

import torch

from archives.archive import Archive
from pipeline.app.nightly.config import BanksConfig
from pipeline.app.nightly.state import fingerprint
from segment.bank import SegmentBank
from segment.cosegment import build_order

QUERY_FIELDS = ("concept", "synonyms", "prompts", "templates", "context", "model_id")


def concept_fingerprint(archive: Archive, options: BanksConfig) -> str:
    """What a concept's bank row is made from: its ranked items, its query and the bank options."""
    items = archive.items
    return fingerprint(
        items.column("rank").to_pylist(),
        items.column("id").to_pylist(),
        items.column("key").to_pylist(),
        {k: archive.query.get(k) for k in QUERY_FIELDS},
        options.model_dump(),
    )


def concepts_to_rebuild(archives: list[Archive], changed: set[str], ce: bool) -> list[str]:
    """Concepts to co-segment again, in archive (folder) order: all if a context concept changed (with CE), else
    the changed ones plus, with CE, every context concept."""
    if not changed:
        return []
    if ce and any(a.context and a.concept in changed for a in archives):
        return [a.concept for a in archives]
    return [a.concept for a in archives if a.concept in changed or (ce and a.context)]


def merge_banks(archives: list[Archive], rebuilt: SegmentBank, base: SegmentBank, base_run: str) -> SegmentBank:
    """The full bank in archive order: rows of `rebuilt` where it has them, the baseline bank's rows elsewhere.

    Parameters are those a full build would record (context and build order over all concepts, k the largest
    archive used); provenance names the run each kept row was built in.
    """
    if rebuilt.encoder != base.encoder or rebuilt.dim != base.dim:
        raise ValueError(f"baseline bank encoder {base.encoder} ({base.dim}) differs from {rebuilt.encoder}")
    names = [a.concept for a in archives]
    refs, texts, per_concept, reused = [], [], {}, {}
    for archive in archives:
        c = archive.concept
        source = rebuilt if c in rebuilt.concepts else base
        refs.append(source.reference(c))
        texts.append(source.text_embeddings[source.index(c)])
        entry = dict(source.provenance.get("concepts", {}).get(c, {}))
        if source is base:
            entry["archive"] = str(Path(archive.path))
            reused[c] = base.provenance.get("reused_rows", {}).get(c, base.provenance.get("run", base_run))
        per_concept[c] = entry
    order = build_order(archives)  # Archive has .context like ConceptImages
    params = {
        **rebuilt.params,
        "context": [names[i] for i in order if archives[i].context],
        "build_order": [names[i] for i in order],
        "k": max(int(e.get("images", 0)) for e in per_concept.values()),
    }
    provenance = {**rebuilt.provenance, "concepts": per_concept, "reused_rows": reused}
    return SegmentBank(
        names,
        torch.stack(refs),
        torch.stack(texts),
        encoder=rebuilt.encoder,
        method=rebuilt.method,
        params=params,
        provenance=provenance,
    )
