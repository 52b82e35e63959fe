"""ReCo co-segmentation on synthetic features: planted seeds, own-image exclusion, blockwise parity, LGC and CE."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import segment.cosegment as co
from segment.cosegment import (
    ConceptImages,
    build_bank,
    build_order,
    context_weights,
    cosegment,
    lgc_weights,
    seed_scores,
)


def dense_seed_scores(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Reference: the full (N*P, N*P) weighted affinity, per-image max, mean over the other images."""
    n, h, w, d = features.shape
    x = features.reshape(n * h * w, d)
    a = (x @ x.T) * weights.reshape(1, -1)  # (NP, NP)
    per_image = a.reshape(n * h * w, n, h * w).amax(-1)  # (NP, n)
    own = torch.arange(n).repeat_interleave(h * w)
    per_image[torch.arange(n * h * w), own] = 0
    return (per_image.sum(1) / (n - 1)).reshape(n, h, w)


def random_features(n: int, h: int, w: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, h, w, d, generator=g), dim=-1)


def test_planted_common_feature_is_every_images_seed() -> None:
    n, h, w, d = 8, 5, 6, 32
    feats = random_features(n, h, w, d)
    common = F.normalize(torch.randn(d, generator=torch.Generator().manual_seed(1)), dim=0)
    rng = np.random.default_rng(0)
    where = [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(n)]
    for i, (r, c) in enumerate(where):
        feats[i, r, c] = F.normalize(common + 0.05 * torch.randn(d), dim=0)
    result = cosegment(feats)
    assert result.seeds.tolist() == [list(p) for p in where]
    assert float(result.reference @ common) > 0.99
    assert torch.isclose(result.reference.norm(), torch.tensor(1.0))


def test_own_image_is_excluded_from_the_seed_score() -> None:
    e = torch.eye(3)
    other = torch.stack([e[0], 0.8 * e[1] + 0.6 * e[2]])  # holds p0 exactly and p1 at cosine 0.8
    feats = torch.stack([torch.stack([e[0], e[1]]), other, other]).reshape(3, 1, 2, 3)
    weights = torch.tensor([[0.1, 1.0], [1.0, 1.0], [1.0, 1.0]]).reshape(3, 1, 2)
    scores = seed_scores(feats, weights)
    assert torch.allclose(scores[0, 0], torch.tensor([1.0, 0.8]))
    assert cosegment(feats, weights).seeds[0].tolist() == [0, 0]
    # Counting the own image (official code) would give p0 (1 + 1 + 0.1) / 3 < p1 (0.8 + 0.8 + 1) / 3: seed p1.
    with_own = (torch.stack([scores[0, 0] * 2, torch.zeros(2)]).sum(0) + torch.tensor([0.1, 1.0])) / 3
    assert int(with_own.argmax()) == 1


def test_blockwise_equals_the_dense_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    feats = random_features(7, 3, 4, 16, seed=3)
    weights = torch.rand(7, 3, 4, generator=torch.Generator().manual_seed(4))
    expected = dense_seed_scores(feats, weights)
    assert torch.allclose(seed_scores(feats, weights), expected, atol=1e-6)
    monkeypatch.setattr(co, "BLOCK_ELEMENTS", 3 * 12 * 12)  # 3 column images per block, ragged last block
    assert torch.allclose(seed_scores(feats, weights), expected, atol=1e-6)


def test_fifty_vit_s_grids_never_build_an_n_by_n_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    n, h, w, d = 50, 14, 14, 384
    feats = random_features(n, h, w, d, seed=5)
    largest = []
    einsum = torch.einsum

    def recording(*args):
        out = einsum(*args)
        largest.append(out.numel())
        return out

    monkeypatch.setattr(co.torch, "einsum", recording)
    start = time.perf_counter()
    result = cosegment(feats, torch.rand(n, h, w))
    assert time.perf_counter() - start < 30
    assert result.seeds.shape == (n, 2)
    biggest_bytes = max(largest) * 4
    assert biggest_bytes < 2 * 2**30 / 8  # one block is well under 256 MB
    assert max(largest) < (n * h * w) ** 2 / 10  # never the full N x N affinity


def test_lgc_and_ce_weights_are_in_unit_interval() -> None:
    clip = random_features(4, 6, 6, 8, seed=6)
    text = torch.randn(8)
    lgc = lgc_weights(clip, text, (3, 3))
    assert lgc.shape == (4, 3, 3) and float(lgc.min()) >= 0 and float(lgc.max()) <= 1
    feats = random_features(4, 3, 3, 16, seed=7)
    refs = F.normalize(torch.randn(3, 16), dim=-1)
    ce = context_weights(feats, refs)
    assert ce.shape == (4, 3, 3) and float(ce.min()) >= 0 and float(ce.max()) <= 1
    assert torch.equal(context_weights(feats, refs[:0]), torch.ones(4, 3, 3))
    # A feature equal to a context reference keeps 1 - sigmoid(1) of its weight; an orthogonal one keeps 1/2.
    same = context_weights(refs[:1].reshape(1, 1, 1, 16), refs[:1])
    assert torch.isclose(same.flatten()[0], 1 - torch.sigmoid(torch.tensor(1.0)))
    with pytest.raises(ValueError, match="context references"):
        context_weights(feats, torch.randn(2, 5))
    with pytest.raises(ValueError, match="weights shape"):
        seed_scores(feats, torch.ones(4, 3, 2))
    with pytest.raises(ValueError, match="at least 2 images"):
        seed_scores(feats[:1])


class TableEncoder:
    """A fake dense encoder: image i (all pixels = i) maps to row i of a fixed feature table."""

    def __init__(self, table: torch.Tensor, name: str = "table") -> None:
        self.table, self.name = table, name
        self.input_size, self.dim = 8, table.shape[-1]
        self.calls: list[int] = []

    def encode(self, images) -> torch.Tensor:
        rows = [int(im[0, 0, 0]) for im in images]
        self.calls.extend(rows)
        return self.table[rows]


def image(i: int) -> np.ndarray:
    return np.full((8, 8, 3), i, np.uint8)


def test_context_elimination_moves_the_seed_off_context_pixels() -> None:
    d = 8
    e = torch.eye(d)
    sky, ball = e[0], e[1]
    table = torch.zeros(8, 1, 3, d)
    for i in range(4):  # images 0-3: the sky archive, sky everywhere
        table[i, 0] = torch.stack([sky, sky, e[2 + i]])
    for i in range(4, 8):  # images 4-7: the ball archive, sky shared exactly, the ball only roughly
        table[i, 0] = torch.stack([sky, F.normalize(ball + 0.5 * e[i - 2], dim=0), e[i - 2]])
    enc = TableEncoder(table)
    text = torch.ones(4)
    archives = [
        ConceptImages("ball", [image(i) for i in range(4, 8)], text, context=False, ids=[4, 5, 6, 7]),
        ConceptImages("sky", [image(i) for i in range(4)], text, context=True, ids=[0, 1, 2, 3]),
    ]
    assert build_order(archives) == [1, 0]
    plain = build_bank(archives, enc, lgc=False, ce=False)
    assert float(plain.reference("ball") @ sky) > 0.99  # without CE the shared sky wins the ball's seeds
    assert enc.calls[:4] == [0, 1, 2, 3]  # the context concept is encoded (built) first
    bank = build_bank(archives, enc, lgc=False, ce=True)
    assert bank.concepts == ["ball", "sky"]
    assert bank.params["context"] == ["sky"] and bank.params["build_order"] == ["sky", "ball"]
    assert float(bank.reference("ball") @ ball) > 0.85
    assert bank.provenance["concepts"]["ball"]["seeds"] == [[0, 1]] * 4
    assert bank.provenance["concepts"]["ball"]["ids"] == [4, 5, 6, 7]


def test_lgc_steers_seeds_to_pixels_the_text_matches() -> None:
    d = 6
    e = torch.eye(d)
    table = torch.zeros(3, 1, 2, d)
    for i in range(3):  # two patterns shared equally by all images; only one matches the text
        table[i, 0] = torch.stack([e[0], e[1]])
    sal = torch.zeros(3, 1, 2, 4)  # DenseCLIP features: the left pixel orthogonal to the text, the right one on it
    sal[:, 0, 0] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    sal[:, 0, 1] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    saliency = TableEncoder(sal, name="clip")
    archives = [ConceptImages("thing", [image(i) for i in range(3)], torch.tensor([1.0, 0, 0, 0]))]
    bank = build_bank(archives, TableEncoder(table), saliency, lgc=True, ce=False)
    assert bank.provenance["concepts"]["thing"]["seeds"] == [[0, 1]] * 3
    with pytest.raises(ValueError, match="LGC needs"):
        build_bank(archives, TableEncoder(table), None, lgc=True)
    with pytest.raises(ValueError, match="duplicate"):
        build_bank(archives * 2, TableEncoder(table), lgc=False)
