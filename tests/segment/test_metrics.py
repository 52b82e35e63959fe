"""mIoU and pixel accuracy match hand-computed values, ignore 255, and skip absent classes."""

from __future__ import annotations

import numpy as np
import pytest

from segment.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy


def test_hand_computed_example() -> None:
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    conf = confusion_matrix(pred, truth, 4)
    assert conf.sum() == 6
    iou = iou_per_class(conf)
    assert iou[0] == pytest.approx(1 / 3) and iou[1] == pytest.approx(2 / 3) and iou[2] == pytest.approx(1 / 2)
    assert np.isnan(iou[3])  # absent from both: not counted
    assert mean_iou(conf) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert pixel_accuracy(conf) == pytest.approx(4 / 6)


def test_perfect_prediction_and_errors() -> None:
    truth = np.random.default_rng(0).integers(0, 5, (20, 20))
    assert mean_iou(confusion_matrix(truth, truth, 5)) == 1.0
    with pytest.raises(ValueError):
        confusion_matrix(truth[:5], truth, 5)
    with pytest.raises(ValueError):
        confusion_matrix(truth + 10, truth, 5)
