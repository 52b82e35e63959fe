"""`coarchive demo`: the whole flow on the embedded toy world, ending in one HTML report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from pipeline.app.demo_ablation import ablation_section
from pipeline.app.demo_banks import archive_section, bank_section
from pipeline.app.demo_car import car_section
from pipeline.app.demo_segment import segmentation_section
from pipeline.app.demo_zegclip import zegclip_section
from pipeline.core.executors import LocalExecutor
from pipeline.core.models import load_model
from pipeline.core.report import Section, Tile, colourise, data_uri, write_report
from pipeline.core.stage import run_stage
from pipeline.pool.embed import EmbedStage
from pipeline.pool.index import build_index
from pipeline.pool.query import search, thumbnails
from pipeline.toy.export import generate_toy_world
from pipeline.toy.quality import dense_labels, text_embeddings
from pipeline.toy.world import COLOURS, WorldSpec

DEMO_CONCEPTS = ("circle", "star", "ring", "cross", "heart", "crescent")


def _truth(data: Path) -> dict[str, list[str]]:
    truth = {}
    for path in sorted((data / "toy_truth").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            truth[row["key"]] = row["things"]
    return truth


def _retrieval_section(loaded, data: Path, spec: WorldSpec, progress: bool) -> Section:
    stage = EmbedStage(str(data / "pool"), str(data), loaded.ref, batch_size=128)
    report = run_stage(stage, LocalExecutor(), progress=progress)
    embeddings = Path(stage.out_dir)
    index_dir = data / "index" / loaded.ref.model_id / "v1"
    canary = text_embeddings(loaded, [*spec.classes, *COLOURS]).numpy()  # (q, d) recall-report queries
    info = build_index(embeddings, index_dir, canary, LocalExecutor(), progress=progress)
    concept_emb = text_embeddings(loaded, list(DEMO_CONCEPTS)).numpy()  # (C, d)
    results = search(index_dir, embeddings, concept_emb, 50)  # one batched search for every concept
    shown = thumbnails(data / "pool", [h for hits in results for h in hits[:8]])
    truth = _truth(data)
    grids, rows = [], [["concept", "images holding it", "precision@8", "precision@50"]]
    for concept, hits in zip(DEMO_CONCEPTS, results, strict=True):
        correct = [concept in truth[h.key] for h in hits]
        held = sum(concept in things for things in truth.values())
        rare = " (rare)" if concept in spec.rare else ""
        rows.append([concept + rare, str(held), f"{np.mean(correct[:8]):.2f}", f"{np.mean(correct):.2f}"])
        tiles = [Tile(data_uri(shown[h.id]), f"{h.score:.3f}", ok) for h, ok in zip(hits[:8], correct, strict=False)]
        grids.append((f"top 8 for “{concept}”{rare}", tiles))
    totals = report.totals()
    return Section(
        "Embed, index, query",
        f"coarchive embed read {totals.get('samples', 0)} pool images from img2dataset shards with webdataset and "
        f"wrote float16 embeddings ({len(report.done)} shards embedded, {len(report.skipped)} already done). "
        f"coarchive index built {info['factory']} over {info['count']} vectors, merged on disk, nprobe "
        f"{info['nprobe']}: recall@10 {info['recall']['recall@10']:.3f} and recall@100 "
        f"{info['recall']['recall@100']:.3f} against exact search on {info['queries']} text queries. "
        "Below, the top images per concept from one batched search; green frames hold the concept, red ones do "
        "not. Rare concepts are the hard part.",
        rows,
        grids,
    )


def _dense_section(loaded, data: Path, spec: WorldSpec, count: int = 6) -> Section:
    bench = data / "benchmark"
    ids = (bench / "splits" / "val.txt").read_text().split()[:count]
    images = np.stack([np.asarray(Image.open(bench / "images" / f"{i}.jpg").convert("RGB")) for i in ids])
    masks = np.stack([np.asarray(Image.open(bench / "masks" / f"{i}.png")) for i in ids])
    pred = dense_labels(loaded, images, text_embeddings(loaded, list(spec.classes)))
    rows = [
        (
            name,
            [
                Tile(data_uri(image, 2), "image"),
                Tile(data_uri(colourise(mask), 2), "truth"),
                Tile(data_uri(colourise(guess), 2), "MaskCLIP"),
            ],
        )
        for name, image, mask, guess in zip(ids, images, masks, pred, strict=True)
    ]
    return Section(
        "Dense labels from the toy CLIP (MaskCLIP value path)",
        "Each patch is labelled with the class whose prompt embedding is closest to its value-path feature.",
        grids=rows,
        legend=list(spec.classes),
    )


def run_demo(out: Path, pool_size: int = 3000, seed: int = 0, progress: bool = True) -> Path:
    """Generate a toy pool and benchmark under `out`, run the flow on them and write out/report.html."""
    start = time.time()
    spec = WorldSpec()
    data = Path(out) / "data"
    generate_toy_world(data, spec, seed=seed, pool_size=pool_size, shard_size=500, bench_size=50, progress=progress)
    loaded = load_model("toy", device="cpu")
    sections = [_retrieval_section(loaded, data, spec, progress)]
    archives_section, archives = archive_section(loaded, data, spec)
    banks, bank = bank_section(loaded, data, spec, archives)
    sections += [archives_section, banks, segmentation_section(loaded, data, bank), ablation_section(loaded)]
    zegclip, zegclip_segmenter = zegclip_section(loaded, data, spec)
    sections += [zegclip, car_section(loaded, data, bank, others={"ZegCLIP (inductive, demo)": zegclip_segmenter})]
    sections.append(_dense_section(loaded, data, spec))
    timing = {"seconds": round(time.time() - start, 1), "pool_size": pool_size, "seed": seed}
    sections.insert(
        0,
        Section(
            "Run",
            f"pool {pool_size} images, seed {seed}, {timing['seconds']} s end to end. Data root: {data.resolve()}",
        ),
    )
    (Path(out) / "demo.json").write_text(json.dumps(timing, indent=2))
    report = write_report(Path(out) / "report.html", "coarchive demo: toy world", sections)
    print(f"browse the results in the web page: coarchive serve --root {data.resolve()}")
    return report
