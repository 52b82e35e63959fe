"""ReCo segmenter: ReCo's scoring rule, bank loading and encoder recreation, saliency and CRF options, errors.

Quality on a small toy protocol (600-image pool at 5% rare rate, top-10 archives, 40 scenes), mIoU on held-out worlds
0 / 1 / 2 (`held_out(seed, N)`): text labels 0.723 / 0.735 / 0.757; ReCo without the saliency product 0.685 / 0.694 /
0.713, with it 0.708 / 0.723 / 0.751, with it and the CRF 0.795 / 0.802 / 0.844. With the dense toy CLIP, text labels
alone are strong; ReCo beats them once its CRF runs. The full ablation, with floors, is
tests/pipeline/toy/test_reco_ablation.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.toy.bank_quality import toy_archives
from pipeline.toy.quality import BENCH_SEED, POOL_SEED, dense_labels, render_many, text_embeddings
from pipeline.toy.world import WorldSpec
from segment.bank import SegmentBank
from segment.cosegment import build_bank
from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
from segment.reco import ReCoSegmenter, concept_maps, square_resize
from segment.reco_ablation import evaluate_labels, segment_all
from segment.segmenter import create_segmenter

SPEC = WorldSpec(rare_rate=0.05)
CLASSES = list(SPEC.classes)


@pytest.fixture(scope="module")
def bank(toy_model) -> SegmentBank:
    images, masks, _ = render_many(SPEC, POOL_SEED, 600, workers=1, progress=False)
    archives, _ = toy_archives(toy_model, SPEC, images, masks, k=10)
    encoder = create_dense_encoder("clip-penultimate", clip=toy_model)
    return build_bank(archives, encoder, ClipDenseEncoder(toy_model), lgc=True, ce=True)


@pytest.fixture(scope="module")
def bench() -> tuple[np.ndarray, np.ndarray]:
    images, masks, _ = render_many(SPEC, BENCH_SEED, 40, workers=1, progress=False)
    return images, masks


def test_scores_follow_recos_rule(toy_model, bank, bench) -> None:
    images, _ = bench
    reco = ReCoSegmenter(bank, clip=toy_model, device="cpu")
    got = reco.predict(images[0], CLASSES).scores  # (C, 96, 96)
    feats = create_dense_encoder("clip-penultimate", clip=toy_model).encode(images[:1])
    clip = ClipDenseEncoder(toy_model).encode(images[:1])
    want = concept_maps(feats, bank.references, (96, 96)) * concept_maps(clip, bank.text_embeddings, (96, 96), 10.0)
    torch.testing.assert_close(got, want[0], atol=1e-5, rtol=1e-4)
    assert reco.protocol.mode == "resize" and reco.protocol.size == toy_model.image_size


def test_saliency_off_is_the_bank_alone(toy_model, bank, bench) -> None:
    images, _ = bench
    reco = ReCoSegmenter(bank, clip=toy_model, saliency=False, device="cpu")
    assert reco.saliency_encoder is None
    got = reco.predict(images[1], CLASSES).scores
    feats = reco.encoder.encode(images[1:2])
    torch.testing.assert_close(got, concept_maps(feats, bank.references, (96, 96))[0], atol=1e-5, rtol=1e-4)
    assert 0 < got.min() and got.max() < 1  # sigmoid of a cosine lies in (0.27, 0.73)


def test_concept_order_permutes_scores(toy_model, bank, bench) -> None:
    images, _ = bench
    reco = ReCoSegmenter(bank, clip=toy_model, device="cpu")
    forward = reco.predict(images[2], CLASSES)
    backward = reco.predict(images[2], CLASSES[::-1])
    torch.testing.assert_close(backward.scores, forward.scores.flip(0))
    np.testing.assert_array_equal(len(CLASSES) - 1 - backward.labels, forward.labels)


def test_crf_returns_probabilities(toy_model, bank, bench) -> None:
    images, _ = bench
    reco = ReCoSegmenter(bank, clip=toy_model, crf=True, device="cpu")
    result = reco.predict(images[3][:90, :70], CLASSES)
    assert tuple(result.scores.shape) == (len(CLASSES), 90, 70)
    torch.testing.assert_close(result.scores.sum(0), torch.ones(90, 70), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(result.labels, result.scores.argmax(0).numpy())


def test_bank_from_folder_and_registry(toy_model, bank, bench, tmp_path) -> None:
    images, _ = bench
    bank.save(tmp_path / "bank")
    loaded = create_segmenter("reco", bank=tmp_path / "bank", clip=toy_model, device="cpu")
    assert loaded.encoder.name == bank.encoder == "clip-penultimate:toy"
    direct = ReCoSegmenter(bank, clip=toy_model, device="cpu")
    torch.testing.assert_close(loaded.predict(images[0], CLASSES).scores, direct.predict(images[0], CLASSES).scores)
    by_name = ReCoSegmenter(tmp_path / "bank", clip="toy", device="cpu")  # the CLIP loaded by its reference
    assert by_name.clip.ref.name == "toy"


def test_errors(toy_model, bank, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a segment bank"):
        ReCoSegmenter(tmp_path / "missing", clip=toy_model)
    timm_bank = SegmentBank(bank.concepts, bank.references, bank.text_embeddings, encoder="timm:vit_small_patch16_224")
    with pytest.raises(ValueError, match="pass encoder"):
        ReCoSegmenter(timm_bank, clip=toy_model)
    other = SegmentBank(bank.concepts, bank.references, bank.text_embeddings, encoder="clip-penultimate:ViT-B-16")
    with pytest.raises(ValueError, match="ViT-B-16"):
        ReCoSegmenter(other, clip=toy_model)
    wrong_dim = SegmentBank(bank.concepts, bank.references[:, :64], None, encoder=bank.encoder)
    with pytest.raises(ValueError, match="bank has 64"):
        ReCoSegmenter(wrong_dim, clip=toy_model)
    with pytest.raises(ValueError, match="names none"):
        ReCoSegmenter(bank, saliency=True)


def test_square_resize_keeps_square_images() -> None:
    image = (np.arange(96 * 96 * 3) % 251).astype(np.uint8).reshape(96, 96, 3)
    assert square_resize(image, 96) is image
    assert square_resize(image[:50], 96).shape == (96, 96, 3)


def test_quality_floors_and_the_crf_beats_text_labels(toy_model, bank, bench) -> None:
    images, masks = bench
    text, _, _ = evaluate_labels(dense_labels(toy_model, images, text_embeddings(toy_model, CLASSES)), masks, CLASSES)
    miou = {}
    for name, options in {"plain": {"saliency": False}, "product": {}, "product+CRF": {"crf": True}}.items():
        segmenter = ReCoSegmenter(bank, clip=toy_model, device="cpu", **options)
        miou[name] = evaluate_labels(segment_all(segmenter, images, CLASSES), masks, CLASSES)[0]
    print(f"text {text:.3f}", miou)
    assert miou["product"] >= miou["plain"] + 0.015  # the saliency product helps: +0.023 .. +0.038 over 3 worlds
    assert miou["product+CRF"] >= text + 0.05  # full ReCo beats text labels: +0.067 .. +0.087
    assert miou["product+CRF"] >= 0.77  # measured 0.795, 0.802, 0.844
