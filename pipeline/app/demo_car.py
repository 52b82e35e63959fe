"""The demo's CaR step: CaR (text only, with bank evidence, with CRF) beside ReCo and other segmenters, same scenes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.core.report import LABEL_COLOURS, Section, Tile, colourise, data_uri
from segment.bank import SegmentBank
from segment.car.segmenter import CaRSegmenter
from segment.datasets import open_dataset
from segment.metrics import confusion_matrix, mean_iou, pixel_accuracy
from segment.segmenter import Segmenter


def car_section(
    loaded,
    data: Path,
    bank: SegmentBank,
    others: dict[str, Segmenter] | None = None,
    limit: int = 12,
    shown: int = 3,
) -> Section:
    """mIoU, pixel accuracy and speed of CaR variants on the first `limit` benchmark scenes, beside ReCo (and any
    `others`, e.g. {"ZegCLIP": segmenter}) on the same scenes; the query set per iteration and masks of a few."""
    from segment.reco import ReCoSegmenter

    dataset = open_dataset("toy", Path(data) / "benchmark")
    samples = [dataset[i] for i in range(min(limit, len(dataset)))]
    concepts = list(bank.concepts)
    if concepts != list(dataset.classes):
        raise ValueError(f"the bank's concepts {concepts} are not the benchmark's classes {dataset.classes}")
    rows = [["segmenter", "mIoU", "pixel accuracy", "ms/image"]]
    predictions: dict[str, list[np.ndarray]] = {}
    traces = []

    def add(name: str, labels: list[np.ndarray], seconds: float) -> None:
        cm = sum(confusion_matrix(p, s.mask, len(concepts)) for p, s in zip(labels, samples, strict=True))
        rows.append([name, f"{mean_iou(cm):.3f}", f"{pixel_accuracy(cm):.3f}", f"{1000 * seconds / len(samples):.0f}"])
        predictions[name] = labels

    for label, b in (("CaR, text", None), ("CaR + bank evidence", bank)):
        plain = CaRSegmenter(loaded, bank=b, device="cpu")
        with_crf = CaRSegmenter(loaded, bank=b, crf=True, device="cpu")
        outs: dict[str, list[np.ndarray]] = {label: [], f"{label} + CRF": []}
        spent = {label: 0.0, f"{label} + CRF": 0.0}
        for i, sample in enumerate(samples):
            start = time.perf_counter()
            checked = plain.check(concepts)
            result = plain.run(sample.image, checked[1])
            outs[label].append(plain.assemble(sample.image, *checked, result).labels)
            middle = time.perf_counter()
            outs[f"{label} + CRF"].append(with_crf.assemble(sample.image, *checked, result).labels)
            spent[label] += middle - start
            spent[f"{label} + CRF"] += time.perf_counter() - start
            if b is None and i < shown:
                sets = " → ".join("{" + ", ".join(concepts[q] for q in s.queries) + "}" for s in result.steps)
                truth = ", ".join(concepts[c] for c in np.unique(sample.mask) if c < len(concepts))
                traces.append(f"{sample.name} (truth: {truth}): {sets}")
        for name, labels in outs.items():
            add(name, labels, spent[name])
    for name, segmenter in {
        "ReCo (bank x saliency)": ReCoSegmenter(bank, clip=loaded, device="cpu"),
        **(others or {}),
    }.items():
        start = time.perf_counter()
        labels = [s.labels for s in segmenter.predict_batch([s.image for s in samples], concepts)]
        add(name, labels, time.perf_counter() - start)
    best_car = max((r for r in rows[1:] if r[0].startswith("CaR")), key=lambda r: float(r[1]))[0]
    side = [best_car, *[n for n in predictions if not n.startswith("CaR")]]
    grids = [
        (
            sample.name,
            [Tile(data_uri(sample.image, 2), "image"), Tile(data_uri(colourise(sample.mask), 2), "truth")]
            + [Tile(data_uri(colourise(predictions[n][i]), 2), n) for n in side],
        )
        for i, sample in enumerate(samples[:shown])
    ]
    text = (
        f"CaR (CLIP as RNN, training-free) on the first {len(samples)} benchmark scenes: gradCAM proposals refined by "
        "attention affinity, a red-ellipse visual prompt per proposal scored by the toy CLIP, and the recurrence that "
        "drops unconfident concepts until the set stops changing. 'bank evidence' adds the segment bank's reference "
        "embeddings to the classifier. Query sets per iteration: " + "; ".join(traces) + "."
    )
    return Section("Segmentation: CaR beside ReCo", text, rows, grids, legend=list(LABEL_COLOURS))
