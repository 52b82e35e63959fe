"""Visual prompts on a tiny synthetic image: exact pixels of the ellipse and box, changes outside the mask only."""

from __future__ import annotations

import numpy as np
import pytest

from segment.car.visual_prompts import apply_visual_prompts, gaussian_blur, grayscale, mask_box

RED = np.array([255, 0, 0], np.uint8)


def _mask() -> np.ndarray:
    mask = np.zeros((7, 7), bool)
    mask[2:5, 1:6] = True  # rows 2..4, columns 1..5
    return mask


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 200, (7, 7, 3), dtype=np.uint8)


def _red_pixels(out: np.ndarray) -> set[tuple[int, int]]:
    return {(int(y), int(x)) for y, x in zip(*np.nonzero((out == RED).all(-1)), strict=True)}


def test_red_ellipse_is_drawn_exactly_where_expected() -> None:
    image = np.zeros((7, 7, 3), np.uint8)
    out = apply_visual_prompts(image, _mask(), ("circle",))
    # box rows 2..4, columns 1..5: centre (3, 3), half-extents 1.5 and 2.5; the filled ellipse is row 3 columns 1..5
    # and rows 2 and 4 columns 2..4; its outline leaves out the three pixels whose 4 neighbours are all inside
    assert _red_pixels(out) == {(2, 2), (2, 3), (2, 4), (4, 2), (4, 3), (4, 4), (3, 1), (3, 5)}
    untouched = ~(out == RED).all(-1)
    assert (out[untouched] == 0).all()


def test_rectangle_is_the_outline_of_the_mask_box() -> None:
    out = apply_visual_prompts(np.zeros((7, 7, 3), np.uint8), _mask(), "rectangle")
    expected = {(y, x) for y in range(2, 5) for x in range(1, 6)} - {(3, 2), (3, 3), (3, 4)}
    assert _red_pixels(out) == expected


def test_grayscale_changes_only_the_outside() -> None:
    image, mask = _image(), _mask()
    image[0, 0] = (10, 20, 30)  # luma 0.299 * 10 + 0.587 * 20 + 0.114 * 30 = 18.15
    out = apply_visual_prompts(image, mask, ("gray",))
    np.testing.assert_array_equal(out[mask], image[mask])
    assert out[0, 0].tolist() == [18, 18, 18]
    np.testing.assert_array_equal(out[~mask], grayscale(image)[~mask])
    assert (out[~mask][:, 0] == out[~mask][:, 1]).all() and (out[~mask][:, 1] == out[~mask][:, 2]).all()


def test_blur_changes_only_the_outside() -> None:
    image, mask = _image(), _mask()
    out = apply_visual_prompts(image, mask, ("blur",), blur_sigma=1.0)
    np.testing.assert_array_equal(out[mask], image[mask])
    np.testing.assert_array_equal(out[~mask], gaussian_blur(image, 1.0)[~mask])
    assert (out[~mask] != image[~mask]).any()
    flat = np.full((7, 7, 3), 77, np.uint8)
    np.testing.assert_array_equal(gaussian_blur(flat, 2.6), flat)  # a constant image stays constant


def test_black_and_combinations_apply_in_order() -> None:
    image, mask = _image(), _mask()
    out = apply_visual_prompts(image, mask, "black+circle")
    np.testing.assert_array_equal(out[~mask], 0)
    assert (3, 3) not in _red_pixels(out) and (3, 1) in _red_pixels(out)
    both = apply_visual_prompts(image, mask, ("blur", "gray"), blur_sigma=1.0)
    np.testing.assert_array_equal(both[~mask], grayscale(gaussian_blur(image, 1.0))[~mask])


def test_tiny_masks_leave_the_image_alone_and_bad_input_raises() -> None:
    image = _image()
    one = np.zeros((7, 7), bool)
    one[3, 3] = True
    np.testing.assert_array_equal(apply_visual_prompts(image, one, ("circle", "blur")), image)
    with pytest.raises(ValueError, match="sparkle"):
        apply_visual_prompts(image, _mask(), ("circle", "sparkle"))
    with pytest.raises(ValueError, match="shape"):
        apply_visual_prompts(image, np.ones((6, 7), bool), ("circle",))
    with pytest.raises(ValueError, match="empty"):
        mask_box(np.zeros((3, 3), bool))
    assert mask_box(_mask()) == (2, 1, 4, 5)
