"""ReCo's ablation: the rows of the paper's component table (LGC, CE, DenseCLIP saliency, CRF) and
`coarchive eval --ablation reco`, ReCo's inference components on one bank over a benchmark.

The full table, with banks built each way, is measured on the toy world by `python -m pipeline.toy.reco_ablation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segment.bank import SegmentBank
from segment.metrics import confusion_matrix, iou_per_class, pixel_accuracy
from segment.reco import SALIENCY_TEMPERATURE, ReCoSegmenter


@dataclass(frozen=True)
class Step:
    """One row of the ablation: which bank (LGC, CE) and which inference (saliency product, CRF)."""

    lgc: bool
    ce: bool
    saliency: bool
    crf: bool
    temperature: float = SALIENCY_TEMPERATURE


# ReCo's table, in the paper's order: every row after "none" keeps the DenseCLIP saliency product.
PAPER_STEPS = {
    "none": Step(False, False, False, False),
    "+DenseCLIP": Step(False, False, True, False),
    "+LGC": Step(True, False, True, False),
    "+CE": Step(False, True, True, False),
    "+both": Step(True, True, True, False),
    "+CRF": Step(True, True, True, True),
}
# The same banks without the saliency product, to separate the bank components from the inference rule.
NO_SALIENCY_STEPS = {
    "LGC, no saliency": Step(True, False, False, False),
    "CE, no saliency": Step(False, True, False, False),
    "both, no saliency": Step(True, True, False, False),
    "both+CRF, no saliency": Step(True, True, False, True),
}


def evaluate_labels(pred: np.ndarray, masks: np.ndarray, classes: list[str]) -> tuple[float, float, dict[str, float]]:
    """mIoU, pixel accuracy and per-class IoU of (N, H, W) predictions against ground-truth masks."""
    confusion = confusion_matrix(pred, masks, len(classes))
    iou = iou_per_class(confusion)
    return float(np.nanmean(iou)), pixel_accuracy(confusion), dict(zip(classes, iou.tolist(), strict=True))


def bank_name(lgc: bool, ce: bool) -> str:
    """The ablation's name for a bank built with or without LGC and CE."""
    return {(False, False): "none", (True, False): "LGC", (False, True): "CE", (True, True): "both"}[(lgc, ce)]


def segment_all(segmenter: ReCoSegmenter, images: np.ndarray, classes: list[str], batch: int = 64) -> np.ndarray:
    """(N, H, W) uint8 labels of every image, concepts in `classes` order."""
    out = []
    for start in range(0, len(images), batch):
        results = segmenter.predict_batch(list(images[start : start + batch]), classes)
        out.append(np.stack([r.labels for r in results]).astype(np.uint8))
    return np.concatenate(out)


# Rows that need only one bank: the inference components (saliency product, CRF) on a given bank.
INFERENCE_STEPS = {
    "bank": (False, False),
    "bank +CRF": (False, True),
    "+DenseCLIP": (True, False),
    "+DenseCLIP +CRF": (True, True),
}


def run_ablation(
    dataset,
    bank: Path | str | None,
    model: str = "toy",
    limit: int | None = None,
    batch_size: int = 8,
    out: Path | str | None = None,
    device: str | None = None,
    progress: bool = False,
) -> str:
    """`coarchive eval --ablation reco`: ReCo's inference components on one bank over a benchmark; a markdown table.

    LGC and CE are properties of the bank (see its params); their rows need banks built each way (`python -m
    pipeline.toy.reco_ablation` does that on the toy world). Writes ablation.json under `out` when given.
    """
    from pipeline.core.models import load_model
    from segment.evaluate import evaluate

    if bank is None:
        raise ValueError("the ReCo ablation needs a bank folder (--bank)")
    bank = SegmentBank.load(bank)
    clip = load_model(model, device=device)
    rows = {}
    for name, (saliency, crf) in INFERENCE_STEPS.items():
        segmenter = ReCoSegmenter(bank, clip=clip, saliency=saliency, crf=crf, device=device)
        result = evaluate(segmenter, dataset, limit=limit, batch_size=batch_size, keep=0, progress=progress)
        rows[name] = {"miou": result.miou, "pixel_accuracy": result.pixel_accuracy, "images": result.images}
    lgc, ce = bank.params.get("lgc"), bank.params.get("ce")
    lines = [f"ReCo ablation on {dataset.name} ({bank.encoder}; bank LGC={lgc}, CE={ce})", ""]
    lines += ["| row | mIoU | pixel acc |", "|---|---|---|"]
    lines += [f"| {n} | {r['miou']:.3f} | {r['pixel_accuracy']:.3f} |" for n, r in rows.items()]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"dataset": dataset.name, "encoder": bank.encoder, "lgc": lgc, "ce": ce, "rows": rows}
        (out / "ablation.json").write_text(json.dumps(meta, indent=2))
    return "\n".join(lines)
