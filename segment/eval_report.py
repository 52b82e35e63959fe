"""An evaluation's results as results.json and an HTML page: summary, per-class IoU, confusion, overlays."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.io import atomic_path
from pipeline.core.report import PALETTE, Section, Tile, colourise, data_uri, heat_map, write_report
from segment.evaluate import EvalResult

THUMB = 256  # longest side of an overlay picture in the page
CONFUSION_SIDE = 480  # about how many pixels wide the confusion image is drawn


def colour_labels(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8: the demo palette when it has a colour per class, else a fixed
    pseudo-random one; ignore (255) is white."""
    if num_classes <= len(PALETTE):
        picture = colourise(np.minimum(mask, len(PALETTE) - 1))
    else:
        picture = np.random.default_rng(0).integers(30, 230, size=(256, 3), dtype=np.uint8)[mask]
    picture[mask == 255] = 255
    return picture


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """(C, C) counts -> (C, C) fractions of each ground-truth row (rows without pixels stay 0)."""
    rows = confusion.sum(1, keepdims=True).astype(np.float64)
    return np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)


def confusion_image(confusion: np.ndarray) -> tuple[np.ndarray, int]:
    """The row-normalised confusion matrix as an (C, C, 3) heat map and the integer scale to draw it at."""
    return heat_map(row_normalised(confusion)), max(1, CONFUSION_SIDE // len(confusion))


def _thumb(picture: np.ndarray, nearest: bool) -> str:
    """A data URI of `picture`, shrunk to THUMB on its long side or enlarged by an integer factor up to it."""
    height, width = picture.shape[:2]
    if max(height, width) > THUMB:
        scale = THUMB / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = np.asarray(Image.fromarray(picture).resize(size, Image.NEAREST if nearest else Image.BILINEAR))
        return data_uri(picture)
    return data_uri(picture, scale=max(1, THUMB // max(height, width)))


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def eval_sections(result: EvalResult) -> list[Section]:
    """The report's sections for one evaluation."""
    protocol = result.protocol
    sizes = "" if protocol.mode == "whole" else f" {protocol.size}" + (f"/{protocol.stride}" if protocol.stride else "")
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items())) or "none"
    summary = Section(
        "Summary",
        f"{result.segmenter} on {result.dataset} ({result.split}), protocol {protocol.mode}{sizes}; "
        f"skipped: {skipped}.",
        [
            ["mIoU %", "pAcc %", "images", "skipped", "seconds", "images/s"],
            [
                _pct(result.miou),
                _pct(result.pixel_accuracy),
                str(result.images),
                str(sum(result.skipped.values())),
                f"{result.seconds:.1f}",
                f"{result.images_per_second:.2f}",
            ],
        ],
    )
    truth, predicted = result.confusion.sum(1), result.confusion.sum(0)
    per_class = Section(
        "IoU per class",
        "IoU over all labelled pixels; '-' marks classes absent from both truth and prediction (not in the mean).",
        [["#", "class", "IoU %", "truth pixels", "predicted pixels"]]
        + [
            [str(i), name, _pct(iou), str(t), str(p)]
            for i, (name, iou, t, p) in enumerate(zip(result.classes, result.iou, truth, predicted, strict=True))
        ],
    )
    picture, scale = confusion_image(result.confusion)
    confusion = Section(
        "Confusion matrix",
        "Rows: ground-truth class, columns: predicted class (numbered as in the IoU table), each row normalised to "
        "sum to 1; dark = 0, bright yellow = 1.",
        grids=[("row-normalised confusion", [Tile(data_uri(picture, scale=scale), f"{len(result.classes)} classes")])],
    )
    num = len(result.classes)
    legend = [
        Tile(data_uri(colour_labels(np.full((12, 12), i, np.uint8), num), scale=2), f"{i} {name}")
        for i, name in enumerate(result.classes)
    ]
    grids = [("colours", legend)]
    for ex in result.examples:
        keep = ex.truth != 255
        correct = float((ex.prediction[keep] == ex.truth[keep]).mean()) if keep.any() else float("nan")
        grids.append(
            (
                ex.name,
                [
                    Tile(_thumb(ex.image, nearest=False), "image"),
                    Tile(_thumb(colour_labels(ex.truth, num), nearest=True), "truth (white = ignore)"),
                    Tile(
                        _thumb(colour_labels(ex.prediction, num), nearest=True),
                        f"prediction, {_pct(correct)} % right",
                    ),
                ],
            )
        )
    overlays = Section("Predictions", f"The first {len(result.examples)} images evaluated.", grids=grids)
    return [summary, per_class, confusion, overlays]


def write_eval_report(result: EvalResult, out: Path | str, title: str | None = None) -> tuple[Path, Path]:
    """Write OUT/results.json and OUT/report.html; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(result.to_json(), indent=2))
    title = title or f"coarchive eval: {result.segmenter} on {result.dataset} ({result.split})"
    html_path = write_report(out / "report.html", title, eval_sections(result))
    return json_path, html_path
