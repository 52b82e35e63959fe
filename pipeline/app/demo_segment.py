"""The demo's segmentation step: the ReCo segmenter on the toy benchmark through the evaluation harness."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.report import LABEL_COLOURS, Section, Tile, colourise, data_uri
from segment.bank import SegmentBank
from segment.datasets import open_dataset
from segment.evaluate import evaluate
from segment.reco import ReCoSegmenter

VARIANTS = {  # row -> (DenseCLIP saliency product, dense CRF)
    "ReCo as published: bank x DenseCLIP saliency": (True, False),
    "ReCo as published + dense CRF": (True, True),
    "ReCo, bank only": (False, False),
    "ReCo, bank only + dense CRF": (False, True),
}


def segmentation_section(loaded, data: Path, bank: SegmentBank, shown: int = 4) -> Section:
    """Evaluate ReCo variants on the demo's benchmark (mIoU, pixel accuracy, speed) and show the best one's masks."""
    dataset = open_dataset("toy", data / "benchmark")
    rows = [["segmenter", "mIoU", "pixel accuracy", "images/s"]]
    results = {}
    for name, (saliency, crf) in VARIANTS.items():
        segmenter = ReCoSegmenter(bank, clip=loaded, saliency=saliency, crf=crf, device="cpu")
        result = evaluate(segmenter, dataset, concepts=list(bank.concepts), keep=shown, progress=False)
        results[name] = result
        speed = result.images / result.seconds
        rows.append([name, f"{result.miou:.3f}", f"{result.pixel_accuracy:.3f}", f"{speed:.0f}"])
    best = max(results, key=lambda n: results[n].miou)
    grids = [
        (
            example.name,
            [
                Tile(data_uri(example.image, 2), "image"),
                Tile(data_uri(colourise(example.truth), 2), "truth"),
                Tile(data_uri(colourise(example.prediction), 2), best),
            ],
        )
        for example in results[best].examples
    ]
    text = (
        f"coarchive eval ran the registered ReCo segmenter on the {results[best].images} benchmark images with the "
        f"bank above; the masks below are the best row's ({best}, mIoU {results[best].miou:.3f})."
    )
    return Section("Segmentation: ReCo", text, rows, grids, legend=list(LABEL_COLOURS))
