"""The dataset base: lazy reads, label tables, and corrupt or missing files raised as CorruptSampleError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segment.datasets.base import CorruptSampleError, SegDataset, identity_table, reduce_zero_table
from tests.segment.datasets.helpers import stripes, write_image, write_mask


def test_label_tables() -> None:
    raw = np.array([0, 1, 2, 3, 255])
    assert identity_table(3)[raw].tolist() == [0, 1, 2, 255, 255]
    assert reduce_zero_table(3)[raw].tolist() == [255, 0, 1, 2, 255]


def test_lazy_reads_and_errors(tmp_path: Path) -> None:
    image = write_image(tmp_path / "a.png", 6, 8)
    write_mask(tmp_path / "a_mask.png", stripes(6, 8, [0, 1]))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    write_image(tmp_path / "small.png", 4, 8)
    write_image(tmp_path / "rgbmask.png", 6, 8)
    items = [
        ("a", tmp_path / "a.png", tmp_path / "a_mask.png"),
        ("broken", tmp_path / "broken.jpg", tmp_path / "a_mask.png"),
        ("gone", tmp_path / "gone.png", tmp_path / "a_mask.png"),
        ("small", tmp_path / "small.png", tmp_path / "a_mask.png"),
        ("rgb", tmp_path / "a.png", tmp_path / "rgbmask.png"),
        ("nomask", tmp_path / "a.png", tmp_path / "none.png"),
    ]
    data = SegDataset("t", ["x", "y"], items)
    assert len(data) == 6 and "6 samples" in repr(data)
    sample = data[0]
    assert np.array_equal(sample.image, image) and sample.mask.dtype == np.uint8
    assert data[-6].name == "a"
    reasons = []
    for index in range(1, 6):
        with pytest.raises(CorruptSampleError) as info:
            data[index]
        reasons.append(info.value.reason)
    assert reasons == [
        "unreadable image",
        "missing image",
        "image and mask sizes differ",
        "mask is not single-channel",
        "missing mask",
    ]
    with pytest.raises(IndexError):
        data[6]
    with pytest.raises(ValueError, match="no classes"):
        SegDataset("empty", [], items)
