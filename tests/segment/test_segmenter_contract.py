"""The Segmenter contract, run on every registered segmenter: shapes at any input size, labels, batching, errors.

A new segmenter joins by adding one factory to FACTORIES: a function of the toy CLIP that returns the segmenter
(toy or random weights, built in seconds) and the concepts it can segment.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from pipeline.toy.quality import BENCH_SEED, POOL_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.segmenter import Segmenter, available_segmenters, create_segmenter, segmenter_factory
from tests.segment.car import contract_factory as car_contract
from tests.segment.zegclip import contract_factory as zegclip_contract


def _reco(toy_model) -> tuple[Segmenter, list[str]]:
    """ReCo on a bank co-segmented from top-6 archives of a 240-image toy pool (about 3 s on one core)."""
    from pipeline.toy.bank_quality import toy_archives
    from segment.cosegment import build_bank
    from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder

    spec = WorldSpec(rare_rate=0.05)
    images, masks, _ = render_many(spec, POOL_SEED, 240, workers=1, progress=False)
    archives, _ = toy_archives(toy_model, spec, images, masks, k=6)
    encoder = create_dense_encoder("clip-penultimate", clip=toy_model)
    bank = build_bank(archives, encoder, ClipDenseEncoder(toy_model), lgc=True, ce=True)
    return create_segmenter("reco", bank=bank, clip=toy_model, device="cpu"), list(bank.concepts)


def _reco_plus(toy_model) -> tuple[Segmenter, list[str]]:
    """ReCo+ trained 2 steps on 4 toy scenes with their true masks (about a second on one core)."""
    import tempfile

    from segment.reco_plus import TrainConfig, train_reco_plus

    spec = WorldSpec()
    images, masks, _ = render_many(spec, POOL_SEED, 4, workers=1, progress=False)
    config = TrainConfig(arch="lraspp_mobilenet_v3_large", steps=2, batch_size=2, crop_size=None)
    folder = tempfile.mkdtemp(prefix="reco-plus-")
    train_reco_plus(images, masks.astype(np.uint8), len(spec.classes), config, list(spec.classes), out=folder)
    return create_segmenter("reco-plus", checkpoint=folder, device="cpu"), list(spec.classes)


FACTORIES: dict[str, Callable[..., tuple[Segmenter, list[str]]]] = {
    "reco": _reco,
    "reco-plus": _reco_plus,
    "zegclip": zegclip_contract.build,
    "car": car_contract.build,
}


def shipped_segmenters() -> list[str]:
    """The segmenters the package itself registers (test doubles registered by other test modules excluded)."""
    return [n for n in available_segmenters() if segmenter_factory(n).__module__.startswith("segment.")]


@pytest.fixture(scope="module", params=shipped_segmenters())
def built(request, toy_model) -> tuple[Segmenter, list[str]]:
    name = request.param
    if name not in FACTORIES:
        pytest.fail(f"segmenter {name!r} is registered but has no factory in {__file__}")
    return FACTORIES[name](toy_model)


@pytest.fixture(scope="module")
def scenes() -> np.ndarray:
    images, _, _ = render_many(WorldSpec(), BENCH_SEED, 4, workers=1, progress=False)
    return images  # (4, 96, 96, 3) uint8


def test_every_segmenter_has_a_factory() -> None:
    assert "reco" in shipped_segmenters()
    assert set(shipped_segmenters()) <= set(FACTORIES)


@pytest.mark.parametrize("size", [(96, 96), (64, 120), (77, 51), (33, 200)])
def test_shapes_at_the_input_size(built, scenes, size) -> None:
    segmenter, concepts = built
    image = scenes[0][: size[0], : size[1]] if size[0] <= 96 and size[1] <= 96 else _resize(scenes[0], size)
    result = segmenter.predict(image, concepts)
    c, (h, w) = len(concepts), size
    assert result.concepts == concepts
    assert isinstance(result.scores, torch.Tensor) and result.scores.dtype == torch.float32
    assert tuple(result.scores.shape) == (c, h, w)
    assert result.labels.shape == (h, w) and result.labels.dtype == np.int64
    assert 0 <= result.labels.min() and result.labels.max() < c
    assert torch.isfinite(result.scores).all()
    np.testing.assert_array_equal(result.labels, result.scores.argmax(0).numpy())


def test_concept_subset_in_the_order_given(built, scenes) -> None:
    segmenter, concepts = built
    subset = [concepts[3], concepts[0], concepts[-1]]
    result = segmenter.predict(scenes[1], subset)
    assert result.concepts == subset and result.scores.shape[0] == 3
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    single = segmenter.predict(scenes[1], [concepts[2]])
    assert single.scores.shape[0] == 1 and (single.labels == 0).all()


def test_batch_equals_one_by_one(built, scenes) -> None:
    segmenter, concepts = built
    images = [scenes[0], scenes[1][:80, :64], scenes[2], scenes[3][5:, 7:]]  # mixed sizes, mixed order
    batch = segmenter.predict_batch(images, concepts)
    assert len(batch) == len(images)
    for image, got in zip(images, batch, strict=True):
        alone = segmenter.predict(image, concepts)
        assert got.scores.shape[1:] == image.shape[:2]
        torch.testing.assert_close(got.scores, alone.scores, atol=1e-5, rtol=1e-4)
        assert (got.labels == alone.labels).mean() >= 0.999


def test_bad_inputs_raise(built, scenes) -> None:
    segmenter, concepts = built
    image = scenes[0]
    with pytest.raises(ValueError, match="uint8"):
        segmenter.predict(image.astype(np.float32), concepts)
    with pytest.raises(ValueError, match="uint8"):
        segmenter.predict(image[..., 0], concepts)  # gray (H, W)
    with pytest.raises(ValueError, match="uint8"):
        segmenter.predict(image[..., :1], concepts)  # gray (H, W, 1)
    with pytest.raises(ValueError, match="no concepts"):
        segmenter.predict(image, [])
    with pytest.raises(ValueError, match="unicorn"):
        segmenter.predict(image, [concepts[0], "unicorn"])
    with pytest.raises(ValueError, match="duplicate"):
        segmenter.predict(image, [concepts[0], concepts[0]])


def test_protocol_is_declared(built) -> None:
    segmenter, _ = built
    assert segmenter.protocol.mode in {"whole", "resize", "slide"}
    if segmenter.protocol.mode != "whole":
        assert segmenter.protocol.size and segmenter.protocol.size > 0


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, 3) uint8 image to `size`."""
    rows = np.arange(size[0]) * image.shape[0] // size[0]
    cols = np.arange(size[1]) * image.shape[1] // size[1]
    return np.ascontiguousarray(image[rows][:, cols])


def test_size_batches_group_equal_sizes_in_bounded_chunks() -> None:
    from segment.segmenter import size_batches

    images = [np.zeros(shape, np.uint8) for shape in [(4, 4, 3), (5, 4, 3), (4, 4, 3), (4, 4, 3), (5, 4, 3)]]
    assert size_batches(images, 2) == [[0, 2], [3], [1, 4]]
    with pytest.raises(ValueError):
        size_batches(images, 0)
