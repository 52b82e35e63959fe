"""SAM refinement with a stub mask source: a concept's mask follows the SAM mask only when their IoU is high enough."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segment.car.sam import mask_iou, sam_refine


def _scores() -> torch.Tensor:
    scores = torch.zeros(2, 4, 4)
    scores[0] = 0.5
    scores[1, 1:3, 1:3] = 0.9  # concept 1: a 2 x 2 block
    return scores


def _sam(image: np.ndarray) -> np.ndarray:
    mask = np.zeros((1, 4, 4), bool)
    mask[0, 1:3, 1:3] = True
    mask[0, 3, 3] = True  # one pixel more: IoU with concept 1 is 4 / 5
    return mask


def test_sam_mask_replaces_a_concept_mask_above_the_iou_only() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    kept = sam_refine(_sam, image, _scores(), iou=0.9)
    assert torch.equal(kept, _scores())
    moved = sam_refine(_sam, image, _scores(), iou=0.7)
    labels = moved.argmax(0).numpy()
    expected = np.zeros((4, 4), np.int64)
    expected[1:3, 1:3] = 1
    expected[3, 3] = 1
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_allclose(mask_iou(expected == 1, _sam(image)), [1.0])


def test_bad_mask_source_raises() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="SAM masks"):
        sam_refine(lambda im: np.zeros((1, 3, 3), bool), image, _scores())
    with pytest.raises(ValueError, match="cannot use"):
        sam_refine(42, image, _scores())


def test_random_init_sam_checkpoint_refines_car_scores(tmp_path) -> None:
    """segment_anything's ViT-B SAM, random weights saved as a user's checkpoint, loaded and run end to end."""
    sam_models = pytest.importorskip("segment_anything").sam_model_registry
    from segment.car.sam import automatic_masks, load_sam

    torch.manual_seed(0)
    torch.save(sam_models["vit_b"](checkpoint=None).state_dict(), tmp_path / "sam_vit_b.pth")
    sam = load_sam(tmp_path / "sam_vit_b.pth", "vit_b")
    source = automatic_masks(sam, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    masks = source(image)
    assert masks.dtype == bool and masks.ndim == 3 and masks.shape[1:] == (48, 64)
    scores = torch.rand(3, 48, 64)
    refined = sam_refine(source, image, scores, iou=0.0)  # any overlap counts: the masks must be applied
    assert refined.shape == scores.shape and torch.all(refined >= scores)
    changed = (refined.argmax(0) != scores.argmax(0)).numpy()
    assert not changed.any() or masks.any(0)[changed].all()  # labels move only inside SAM masks
    with pytest.raises(ValueError, match="unknown SAM model type"):
        load_sam(tmp_path / "sam_vit_b.pth", "vit_z")
