"""The demo's archive and segment-bank steps: per-concept archives with weak ones flagged, banks as heat maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from archives.archive import archive_images, read_archive
from archives.registry import Concept, save_registry
from archives.retrieve import build_archives, run_dir
from archives.toy_quality import archive_precision, load_truth
from pipeline.core.report import Section, Tile, colourise, data_uri, heat_map
from pipeline.toy.quality import dense_labels, text_embeddings
from pipeline.toy.world import WorldSpec
from segment.bank import SegmentBank
from segment.bank_from_archives import bank_from_run
from segment.bank_labels import bank_logits
from segment.dense_encoders import create_dense_encoder
from segment.metrics import confusion_matrix, iou_per_class

ABSENT = ("dog",)  # a concept the toy pool never shows: its archive must come out weak
RUN = "demo"
TEMPERATURE = 0.05  # softmax over concepts of cos / T for the heat maps


def demo_concepts(spec: WorldSpec) -> list[Concept]:
    """The demo registry: stuff classes as ReCo's context concepts, the things, and one absent concept."""
    stuff = [Concept(name, context=True) for name in spec.stuff]
    return [*stuff, *(Concept(name) for name in spec.things), *(Concept(name) for name in ABSENT)]


def archive_section(loaded, data: Path, spec: WorldSpec, k: int = 50) -> tuple[Section, Path]:
    """Build the demo's archives (registry, one batched retrieval, images.tar); a table and an image grid each."""
    concepts = demo_concepts(spec)
    save_registry(data / "concepts.yaml", concepts)
    results = build_archives(data, loaded, concepts, RUN, "toy", k=k, pool=data / "pool")
    folder = run_dir(data, loaded.ref.model_id, RUN)
    truth = load_truth(data / "toy_truth")
    rows = [["concept", "pool images holding it", "precision", "strength", "standouts", "duplicates removed"]]
    precision = {r["concept"]: r for r in archive_precision(folder, data / "toy_truth")}
    grids = []
    for result in results:
        p = precision[result.concept]
        flag = " ⚠ WEAK" if result.weak else ""
        rows.append(
            [
                result.concept + flag,
                str(p["positives"]),
                f"{p['precision']:.2f}",
                f"{result.strength:.2f}",
                f"{result.standouts}/{result.items}",
                str(result.duplicates_removed),
            ]
        )
        if result.concept in spec.stuff:
            continue
        archive = read_archive(folder / result.slug)
        ids, images = archive_images(archive)
        keys = dict(zip(archive.items.column("id").to_pylist(), archive.items.column("key").to_pylist(), strict=True))
        tiles = [
            Tile(data_uri(Image.fromarray(im).resize((64, 64))), f"#{r + 1}", result.concept in truth[keys[i]])
            for r, (i, im) in enumerate(zip(ids[:10], images[:10], strict=True))
        ]
        title = f"“{result.concept}”: top 10 of {result.items}" + (f" — WEAK: {result.reason}" if result.weak else "")
        grids.append((title, tiles))
    text = (
        f"The registry (data/concepts.yaml) names {len(concepts)} concepts: the 5 backgrounds as ReCo's context "
        f"concepts, the 8 things, and “dog”, which the pool never shows. coarchive archive retrieved all of them in "
        f"one batched search, removed near-duplicates, and measured how far each archive's top {k} stand above the "
        "pool's background scores. Weak archives are flagged instead of handed on silently: an absent concept, or a "
        "rare one with fewer real images than k. Green frames hold the concept, red ones do not."
    )
    return Section("Concept archives", text, rows, grids), folder


def bank_section(loaded, data: Path, spec: WorldSpec, archives: Path, shown: int = 3) -> tuple[Section, SegmentBank]:
    """Co-segment the world's archives into a bank; IoU against text-only labels and heat maps per concept."""
    bank, used = bank_from_run(loaded, archives, concepts=list(spec.classes))
    bank.save(data / "banks" / loaded.ref.model_id / RUN)
    bench = data / "benchmark"
    ids = (bench / "splits" / "val.txt").read_text().split()
    images = np.stack([np.asarray(Image.open(bench / "images" / f"{i}.jpg").convert("RGB")) for i in ids])
    masks = np.stack([np.asarray(Image.open(bench / "masks" / f"{i}.png")) for i in ids])
    encoder = create_dense_encoder(bank.encoder.split(":")[0], clip=loaded)
    with torch.no_grad():
        scores = bank_logits(encoder.encode(images), bank, tuple(images.shape[1:3]))  # (N, C, H, W)
    bank_pred = scores.argmax(1).to(torch.uint8).numpy()
    text_pred = dense_labels(loaded, images, text_embeddings(loaded, list(spec.classes)))
    count = len(spec.classes)
    iou = {
        name: iou_per_class(confusion_matrix(pred, masks, count))
        for name, pred in (("text", text_pred), ("bank", bank_pred))
    }
    rows = [["class", "IoU, text prompts (MaskCLIP)", "IoU, segment bank"]]
    rows += [[c, f"{iou['text'][i]:.2f}", f"{iou['bank'][i]:.2f}"] for i, c in enumerate(spec.classes)]
    rows.append(["mIoU", f"{np.nanmean(iou['text']):.2f}", f"{np.nanmean(iou['bank']):.2f}"])
    probs = torch.softmax(scores / TEMPERATURE, dim=1)  # (N, C, H, W): how surely each pixel goes to each concept
    grids = []
    for n in range(min(shown, len(ids))):
        tiles = [
            Tile(data_uri(images[n]), "image"),
            Tile(data_uri(colourise(masks[n])), "truth"),
            Tile(data_uri(colourise(bank_pred[n])), "bank labels"),
        ]
        for c, name in enumerate(spec.classes):
            if name in spec.things:
                tiles.append(Tile(data_uri(heat_map(probs[n, c].numpy())), name))
        grids.append((f"{ids[n]}: image, truth, bank labels, then each thing's heat map", tiles))
    text = (
        f"coarchive cosegment turned the {count} world archives ({used} images) into a segment bank with "
        f"{bank.encoder} features, language-guided co-segmentation and context elimination (context concepts "
        f"built first: {', '.join(bank.params['context'])}). Labelling the {len(ids)} benchmark images by their "
        f"nearest reference: {_compared(np.nanmean(iou['bank']), np.nanmean(iou['text']))} labelling them by the "
        "nearest text prompt (mIoU below). ReCo's inference and its CRF, next, are what turn a bank into masks."
    )
    section = Section(
        "Segment banks", text, rows, grids, legend=list(spec.classes), colour_scale="how surely a pixel is the thing"
    )
    return section, bank


def _compared(bank: float, text: float) -> str:
    """'beats', 'matches' or 'comes within X of' text labels, in words, for the report."""
    if bank >= text + 0.005:
        return f"beats ({bank:.2f} against {text:.2f})"
    if bank > text - 0.005:
        return f"matches ({bank:.2f})"
    return f"comes within {text - bank:.2f} of ({bank:.2f} against {text:.2f})"
