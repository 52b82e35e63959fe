"""Box extraction from CAM regions and the affinity refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segment.car.affinity import box_mask, refine_cams, region_boxes, sinkhorn_affinity


def test_region_boxes_one_box_per_8_connected_region() -> None:
    mask = np.array(
        [
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 1, 1],
            [0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 0, 0, 0],
        ],
        bool,
    )
    # (0, 0) and (1, 1) touch diagonally: one region; (1, 4), (1, 5), (2, 5): another; row 4: a third
    assert region_boxes(mask) == [(0, 0, 1, 1), (1, 4, 2, 5), (4, 1, 4, 2)]
    assert region_boxes(np.zeros((3, 3), bool)) == []
    assert region_boxes(np.ones((2, 3), bool)) == [(0, 0, 1, 2)]
    with pytest.raises(ValueError, match="2-d"):
        region_boxes(np.zeros(4, bool))


def test_box_mask_thresholds_relative_to_the_peak() -> None:
    cam = torch.zeros(5, 6)
    cam[1, 1], cam[2, 2], cam[4, 5] = 1.0, 0.5, 0.45
    expected = torch.zeros(5, 6, dtype=torch.bool)
    expected[1:3, 1:3] = True
    expected[4, 5] = True
    assert torch.equal(box_mask(cam, 0.4), expected)  # 0.45 > 0.4: its own one-pixel box
    expected[4, 5] = False
    assert torch.equal(box_mask(cam, 0.45), expected)  # strictly above the threshold only
    assert not box_mask(torch.zeros(3, 3), 0.4).any()


def test_sinkhorn_affinity_is_symmetric_and_refinement_is_normalised() -> None:
    attention = torch.softmax(torch.randn(12, 12, generator=torch.Generator().manual_seed(0)), -1)
    t = sinkhorn_affinity(attention)
    torch.testing.assert_close(t, t.T)
    cams = torch.rand(3, 3, 4, generator=torch.Generator().manual_seed(1))
    refined = refine_cams(cams, t, 0.4)
    assert refined.shape == (3, 3, 4)
    torch.testing.assert_close(refined.flatten(1).amax(1), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(refined.flatten(1).amin(1), torch.zeros(3), atol=1e-6, rtol=0)
