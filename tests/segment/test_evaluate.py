"""The evaluation harness: exact metrics on hand-made predictions, protocols, corrupt samples, JSON and HTML."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segment.datasets.base import Sample, SegDataset
from segment.eval_protocol import predict_with_protocol, resize_labels, window_starts
from segment.eval_report import write_eval_report
from segment.evaluate import evaluate
from segment.segmenter import Protocol
from tests.segment.eval_segmenters import ConstantSegmenter, OracleSegmenter, PointwiseSegmenter, encode

CLASSES = ["a", "b", "c", "d"]


class MemoryDataset:
    """A dataset held in memory, (image, mask) pairs with names."""

    name, split, classes = "memory", "val", CLASSES

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.samples = [(f"m{i}", encode(m, seed=i), m) for i, m in enumerate(masks)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return Sample(*self.samples[index])


def hand_masks() -> list[np.ndarray]:
    """Two masks: 8 pixels of a, 4 of b, 2 of c, 6 ignored; d never appears."""
    first = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 255, 255], [2, 2, 255, 255]], np.uint8)
    second = np.array([[1, 1, 255, 255]], np.uint8)
    return [first, second]


def test_oracle_scores_one() -> None:
    result = evaluate(OracleSegmenter(), MemoryDataset(hand_masks()), progress=False)
    assert result.miou == 1.0 and result.pixel_accuracy == 1.0
    assert result.confusion.sum() == 14  # ignore pixels excluded
    assert np.array_equal(np.diag(result.confusion), [8, 4, 2, 0])
    assert math.isnan(result.iou[3]) and result.images == 2 and result.skipped == {}


def test_constant_gives_exact_ious() -> None:
    result = evaluate(ConstantSegmenter(1), MemoryDataset(hand_masks()), progress=False)
    iou = result.iou
    assert iou[0] == 0 and iou[1] == pytest.approx(4 / 14) and iou[2] == 0 and math.isnan(iou[3])
    assert result.miou == pytest.approx((4 / 14) / 3)
    assert result.pixel_accuracy == pytest.approx(4 / 14)
    assert result.confusion[:, 1].tolist() == [8, 4, 2, 0]  # every labelled pixel predicted b
    constant_d = evaluate(ConstantSegmenter(3), MemoryDataset(hand_masks()), progress=False)
    assert constant_d.miou == 0.0 and constant_d.iou[3] == 0.0  # predicted but absent: counted, IoU 0


def test_batches_limit_and_examples() -> None:
    masks = [np.full((5, 6), i % 4, np.uint8) for i in range(7)]
    oracle = OracleSegmenter()
    result = evaluate(oracle, MemoryDataset(masks), batch_size=3, keep=2, limit=5, progress=False)
    assert oracle.batches == [3, 2] and result.images == 5
    assert [e.name for e in result.examples] == ["m0", "m1"]
    assert result.examples[1].prediction.shape == (5, 6) and np.all(result.examples[1].prediction == 1)
    assert result.images_per_second > 0


def test_slide_equals_whole_for_a_pointwise_segmenter() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 97, 3), dtype=np.uint8)  # short side = window
    segmenter = PointwiseSegmenter()
    whole = predict_with_protocol(segmenter, [image], CLASSES, Protocol("whole"))[0]
    segmenter.sizes.clear()
    slide = predict_with_protocol(segmenter, [image], CLASSES, Protocol("slide", 40, 25), batch_size=2)[0]
    assert segmenter.sizes == [(40, 40)] * 4  # windows at 0, 25, 50 and 57
    assert slide.scores.shape == (4, 40, 97) and np.allclose(slide.scores, whole.scores, atol=1e-5)
    assert np.array_equal(slide.labels, whole.labels)


def test_slide_and_resize_share_scores_on_a_resized_image() -> None:
    image = np.random.default_rng(1).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    segmenter = PointwiseSegmenter()
    slide = predict_with_protocol(segmenter, [image], CLASSES, Protocol("slide", 32, 20))[0]
    assert set(segmenter.sizes) == {(32, 32)}
    resized = predict_with_protocol(segmenter, [image], CLASSES, Protocol("resize", 32))[0]
    assert segmenter.sizes[-1] == (32, 58)  # short side 32
    assert slide.labels.shape == resized.labels.shape == (50, 90)
    assert np.allclose(slide.scores, resized.scores, atol=1e-4)


def test_window_starts_cover_like_mmseg() -> None:
    assert window_starts(512, 512, 426) == [0]
    assert window_starts(683, 512, 426) == [0, 171]
    assert window_starts(938, 512, 426) == [0, 426]
    assert window_starts(1000, 512, 426) == [0, 426, 488]
    assert window_starts(100, 512, 426) == [0]


def test_resize_protocol_returns_original_size() -> None:
    mask = np.zeros((60, 90), np.uint8)
    mask[:, 30:60], mask[:, 60:] = 1, 2
    dataset = MemoryDataset([mask])
    oracle = OracleSegmenter()
    result = evaluate(oracle, dataset, protocol=Protocol("resize", 30), progress=False)
    assert result.examples[0].prediction.shape == (60, 90)
    assert result.pixel_accuracy > 0.95
    assert resize_labels(np.array([[0, 1], [2, 3]]), (4, 4)).tolist() == [[0, 0, 1, 1]] * 2 + [[2, 2, 3, 3]] * 2


def test_corrupt_samples_are_counted_and_skipped(tmp_path: Path) -> None:
    mask = np.array([[0, 1], [2, 3]], np.uint8)
    Image.fromarray(encode(mask)).save(tmp_path / "good.png")
    Image.fromarray(mask).save(tmp_path / "good_mask.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG truncated")
    items = [
        ("good", tmp_path / "good.png", tmp_path / "good_mask.png"),
        ("bad", tmp_path / "bad.png", tmp_path / "good_mask.png"),
        ("orphan", tmp_path / "good.png", tmp_path / "missing.png"),
        ("good2", tmp_path / "good.png", tmp_path / "good_mask.png"),
    ]
    result = evaluate(OracleSegmenter(), SegDataset("disk", CLASSES, items), progress=False)
    assert result.images == 2 and result.skipped == {"unreadable image": 1, "missing mask": 1}
    assert result.miou == 1.0 and result.confusion.sum() == 8


def test_bad_arguments_and_segmenter_output() -> None:
    dataset = MemoryDataset(hand_masks())
    with pytest.raises(ValueError, match="3 concepts for the 4 classes"):
        evaluate(OracleSegmenter(), dataset, concepts=["x", "y", "z"], progress=False)
    with pytest.raises(ValueError, match="unknown protocol mode 'tile'"):
        evaluate(OracleSegmenter(), dataset, protocol=Protocol("tile"), progress=False)
    with pytest.raises(ValueError, match="needs a positive stride"):
        evaluate(OracleSegmenter(), dataset, protocol=Protocol("slide", 8), progress=False)

    class Wrong(ConstantSegmenter):
        def predict_batch(self, images, concepts):
            segs = super().predict_batch(images, concepts)
            for seg in segs:
                seg.labels = seg.labels[:, :-1]
            return segs

    with pytest.raises(ValueError, match="returned scores"):
        evaluate(Wrong(), dataset, progress=False)


def test_json_and_html_report(tmp_path: Path) -> None:
    result = evaluate(ConstantSegmenter(1), MemoryDataset(hand_masks()), progress=False)
    json_path, html_path = write_eval_report(result, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["miou"] == pytest.approx((4 / 14) / 3) and data["pixel_accuracy"] == pytest.approx(4 / 14)
    assert data["iou"] == {"a": 0.0, "b": pytest.approx(4 / 14), "c": 0.0, "d": None}
    assert data["images"] == 2 and data["confusion"][0] == [0, 8, 0, 0] and data["protocol"]["mode"] == "whole"
    html = html_path.read_text()
    assert "9.5" in html and "28.6" in html  # mIoU % and pAcc %
    assert "Confusion matrix" in html and "IoU per class" in html and "m0" in html
    assert html.count("data:image/png;base64,") == 1 + len(CLASSES) + 3 * 2  # confusion, legend, overlays
    assert "9.5" in result.table() and "d" in result.table()
