"""Dense CRF: shapes, normalised output, settings checks, and noisy labels cleaned up along colour edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segment.crf import CrfSettings, dense_crf


def _scene(h: int = 48, w: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 3-region image (left red, right-top blue, right-bottom green) with mild noise, and its true labels."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2 :] = 1
    truth[h // 2 :, w // 2 :] = 2
    colours = np.array([[200, 40, 40], [40, 40, 200], [40, 180, 60]])
    image = colours[truth] + rng.normal(0, 8, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def _noisy_probs(truth: np.ndarray, flip: float, seed: int = 1) -> np.ndarray:
    """Probabilities that favour a random wrong class at a `flip` fraction of pixels."""
    rng = np.random.default_rng(seed)
    labels = truth.copy()
    wrong = rng.random(truth.shape) < flip
    labels[wrong] = (truth[wrong] + rng.integers(1, 3, wrong.sum())) % 3
    probs = np.full((3, *truth.shape), 0.2, np.float32)
    np.put_along_axis(probs, labels[None], 0.6, axis=0)
    return probs


def test_shapes_and_normalised() -> None:
    image, truth = _scene(37, 53)
    probs = _noisy_probs(truth, 0.2)
    image.flags.writeable = False  # e.g. decoded by a dataset reader
    out = dense_crf(image, torch.from_numpy(probs))
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)
    assert (out >= 0).all()


def test_crf_cleans_noisy_labels() -> None:
    image, truth = _scene()
    probs = _noisy_probs(truth, 0.3)
    before = (probs.argmax(0) == truth).mean()
    after = (dense_crf(image, probs).argmax(0) == truth).mean()
    assert before == pytest.approx(0.7, abs=0.03)
    assert after >= 0.95 > before  # measured 1.00


def test_settings_and_overrides() -> None:
    image, truth = _scene()
    probs = _noisy_probs(truth, 0.3)
    one = dense_crf(image, probs, iterations=1)
    ten = dense_crf(image, probs, CrfSettings(iterations=10))
    assert not np.allclose(one, ten)
    with pytest.raises(ValueError, match="unknown CRF settings"):
        dense_crf(image, probs, sxy=3)


def test_bad_inputs() -> None:
    image, truth = _scene()
    probs = _noisy_probs(truth, 0.1)
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(image.astype(np.float32), probs)
    with pytest.raises(ValueError, match="probs must be"):
        dense_crf(image, probs[:, :10])
    single = dense_crf(image, probs[:1])
    assert single.shape == (1, *truth.shape) and (single == 1).all()
