"""ReCo+: checkpoints round-trip exactly, training is deterministic, resume gives the uninterrupted model, and the
segmenter contract. Its quality on the toy world (above the ReCo that taught it) is held by
tests/pipeline/toy/test_reco_plus_quality.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.toy.quality import BENCH_SEED, POOL_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.reco_plus import ReCoPlusSegmenter, TrainConfig, train_reco_plus
from segment.segmenter import create_segmenter

SPEC = WorldSpec(rare_rate=0.05)
CLASSES = list(SPEC.classes)
TINY = TrainConfig(arch="lraspp_mobilenet_v3_large", steps=2, batch_size=2, crop_size=None, scale_range=(0.75, 1.25))


def tiny_checkpoint(folder, steps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Train for `steps` on 4 toy scenes with their true masks; the scenes and masks."""
    images, masks, _ = render_many(SPEC, POOL_SEED, 4, workers=1, progress=False)
    config = TrainConfig(**{**TINY.__dict__, "steps": steps})
    train_reco_plus(images, masks.astype(np.uint8), len(CLASSES), config, CLASSES, out=folder)
    return images, masks


def test_checkpoint_round_trip_and_determinism(tmp_path) -> None:
    images, _ = tiny_checkpoint(tmp_path / "a")
    tiny_checkpoint(tmp_path / "b")
    a = ReCoPlusSegmenter(tmp_path / "a", device="cpu").predict_batch(list(images), CLASSES)
    b = ReCoPlusSegmenter(tmp_path / "b", device="cpu").predict_batch(list(images), CLASSES)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.scores, y.scores) and np.array_equal(x.labels, y.labels)


def test_resume_continues_to_the_same_model(tmp_path) -> None:
    images, masks, _ = render_many(SPEC, POOL_SEED, 4, workers=1, progress=False)
    labels = masks.astype(np.uint8)
    full = TrainConfig(**{**TINY.__dict__, "steps": 4, "save_every": 2})
    straight = train_reco_plus(images, labels, len(CLASSES), full, CLASSES, out=tmp_path / "straight")
    train_reco_plus(images, labels, len(CLASSES), full, CLASSES, out=tmp_path / "resumed", max_steps=3)
    resumed = train_reco_plus(images, labels, len(CLASSES), full, CLASSES, out=tmp_path / "resumed", resume=True)
    x = torch.from_numpy(images)
    from segment.reco_plus import normalise

    with torch.no_grad():
        assert torch.allclose(straight(normalise(x))["out"], resumed(normalise(x))["out"], atol=1e-4)


def test_contract(tmp_path) -> None:
    tiny_checkpoint(tmp_path)
    seg = create_segmenter("reco-plus", checkpoint=tmp_path, device="cpu")
    small = np.zeros((40, 56, 3), np.uint8)
    bench, _, _ = render_many(SPEC, BENCH_SEED, 2, workers=1, progress=False)
    subset = [CLASSES[3], CLASSES[0]]
    results = seg.predict_batch([small, *bench], subset)
    assert results[0].scores.shape == (2, 40, 56) and results[0].labels.shape == (40, 56)
    assert results[1].scores.shape == (2, 96, 96)
    assert torch.allclose(results[1].scores.sum(0), torch.ones(96, 96), atol=1e-5)
    assert set(np.unique(results[1].labels)) <= {0, 1}
    with pytest.raises(ValueError, match="not trained"):
        seg.predict(bench[0], ["unicorn"])
    with pytest.raises(ValueError):
        seg.predict(bench[0].astype(np.float32), subset)
    with pytest.raises(FileNotFoundError):
        ReCoPlusSegmenter(tmp_path / "missing")
    with pytest.raises(ValueError):
        train_reco_plus(bench, np.full((2, 96, 96), 40, np.uint8), len(CLASSES), TINY)
