"""ZegCLIP training: the loss, pseudo-labels, loss decrease, exact resume, transductive continuation, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.toy.quality import POOL_SEED, render_many
from pipeline.toy.world import WorldSpec
from segment.zegclip.checkpoint import read_meta
from segment.zegclip.data import IGNORE, UNLABELLED, TrainingSet, check_split, split_masks
from segment.zegclip.loss import LossConfig, nel_loss
from segment.zegclip.model import ModelConfig, ZegCLIP
from segment.zegclip.train import TrainConfig, pseudo_label, train_zegclip
from segment.zegclip.vocabulary import Vocabulary, embed_texts

CLASSES = list(WorldSpec().classes)
UNSEEN = ["star", "ring"]
TINY = TrainConfig(steps=6, batch_size=2, lr=1e-4, warmup=2, crop_size=64, scale_range=(0.9, 1.1), save_every=3)


@pytest.fixture(scope="module")
def scenes():
    images, masks, _ = render_many(WorldSpec(rare_rate=0.05), POOL_SEED, 16, workers=1, progress=False)
    return images, masks


@pytest.fixture(scope="module")
def vocab(toy_model) -> Vocabulary:
    return Vocabulary(CLASSES, embed_texts(toy_model, CLASSES))


def _seen_set(scenes) -> TrainingSet:
    images, masks = scenes
    return TrainingSet(list(images), split_masks(list(masks), CLASSES, UNSEEN), check_split(CLASSES, UNSEEN))


def _model(toy_model) -> ZegCLIP:
    torch.manual_seed(0)
    return ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=2))


def test_loss_prefers_the_truth_and_ignores_255() -> None:
    labels = torch.randint(0, 3, (2, 8, 8))
    truth = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 20 - 10
    assert nel_loss(truth, labels)["loss"] < 0.05 < nel_loss(-truth, labels)["loss"]
    ignored = labels.clone()
    ignored[:, :4] = IGNORE
    noisy = truth.clone()
    noisy[:, :, :4] = torch.randn(2, 3, 4, 8) * 10
    assert nel_loss(noisy, ignored)["loss"] == pytest.approx(float(nel_loss(truth, ignored)["loss"]), abs=1e-3)
    official = LossConfig(ignore_as_negative=True)
    assert nel_loss(noisy, ignored, official)["loss"] > nel_loss(truth, ignored, official)["loss"] + 0.01
    with pytest.raises(ValueError, match="outside"):
        nel_loss(truth, torch.full((2, 8, 8), 7))


def test_pseudo_labels_fill_only_unlabelled_pixels() -> None:
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 3] = 5.0  # class 3 wins among the pseudo classes [2, 3]
    logits[0, 0] = 9.0  # a seen class scoring higher must not be chosen
    labels = torch.tensor([[[0, UNLABELLED], [IGNORE, UNLABELLED]]])
    assert pseudo_label(logits, labels, [2, 3]).tolist() == [[[0, 3], [IGNORE, 3]]]
    assert pseudo_label(logits, labels, []).tolist() == [[[0, IGNORE], [IGNORE, IGNORE]]]


def test_splits_and_training_sets_are_checked(scenes) -> None:
    with pytest.raises(ValueError, match="unicorn"):
        check_split(CLASSES, ["unicorn"])
    with pytest.raises(ValueError, match="every class"):
        check_split(CLASSES, CLASSES)
    images, masks = scenes
    split = split_masks(list(masks[:2]), CLASSES, UNSEEN)
    seen = check_split(CLASSES, UNSEEN)
    star = masks[:2] == CLASSES.index("star")
    assert (np.stack(split)[star] == UNLABELLED).all()
    grass = masks[:2] == CLASSES.index("grass")
    assert (np.stack(split)[grass] == seen.index("grass")).all()
    with pytest.raises(ValueError, match="shape"):
        TrainingSet([images[0]], [masks[0][:50]], seen)
    with pytest.raises(ValueError, match="outside"):
        TrainingSet([images[0]], [np.full((96, 96), 40, np.uint8)], seen)


def test_loss_decreases(toy_model, scenes, vocab) -> None:
    losses: list[float] = []
    config = TrainConfig(steps=24, batch_size=2, lr=2e-4, warmup=2, crop_size=64, scale_range=(1.0, 1.0))
    train_zegclip(
        _model(toy_model), _seen_set(scenes), vocab, config, "toy", on_step=lambda s, d: losses.append(d["loss"])
    )
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6])


def test_resume_gives_the_uninterrupted_model(toy_model, scenes, vocab, tmp_path) -> None:
    data = _seen_set(scenes)
    whole = train_zegclip(_model(toy_model), data, vocab, TINY, "toy", out=tmp_path / "whole")
    expected = {k: v.clone() for k, v in whole.trainable_state_dict().items()}
    train_zegclip(_model(toy_model), data, vocab, TINY, "toy", out=tmp_path / "cut", max_steps=3)
    assert read_meta(tmp_path / "cut").step == 3
    resumed = train_zegclip(_model(toy_model), data, vocab, TINY, "toy", out=tmp_path / "cut", resume=True)
    for name, tensor in resumed.trainable_state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert read_meta(tmp_path / "cut").step == 6
    other = TrainConfig(**{**TINY.__dict__, "lr": 1.0})
    with pytest.raises(ValueError, match="another config"):
        train_zegclip(_model(toy_model), data, vocab, other, "toy", out=tmp_path / "cut", resume=True)
    with pytest.raises(FileNotFoundError):
        train_zegclip(_model(toy_model), data, vocab, TINY, "toy", out=tmp_path / "none", resume=True)


def test_transductive_continues_from_the_inductive_checkpoint(toy_model, scenes, vocab, tmp_path) -> None:
    data = _seen_set(scenes)
    train_zegclip(_model(toy_model), data, vocab, TINY, "toy", out=tmp_path / "ind")
    assert read_meta(tmp_path / "ind").seen_bias == pytest.approx(0.1)
    both = TrainingSet(data.images, data.labels, data.classes + UNSEEN)
    model = train_zegclip(_model(toy_model), both, vocab, TINY, "toy", pseudo_classes=UNSEEN,
                          init=tmp_path / "ind", out=tmp_path / "st")  # fmt: skip
    meta = read_meta(tmp_path / "st")
    assert meta.pseudo_classes == UNSEEN and meta.seen_bias == 0.0 and meta.classes[-2:] == UNSEEN
    assert model is not None
    with pytest.raises(ValueError, match="pseudo-label classes"):
        train_zegclip(_model(toy_model), data, vocab, TINY, "toy", pseudo_classes=["star"])


def test_photometric_distortion_stays_in_range_and_follows_its_generator() -> None:
    from segment.zegclip.data import photometric_distortion

    image = torch.rand(3, 16, 16)
    outs = [photometric_distortion(image, torch.Generator().manual_seed(s)) for s in (1, 1, 2, 3, 4, 5)]
    assert torch.equal(outs[0], outs[1])
    assert all(o.shape == image.shape and 0 <= o.min() and o.max() <= 1 for o in outs)
    assert sum(not torch.allclose(o, image) for o in outs[2:]) >= 3


def test_drop_path_acts_in_training_only(toy_model) -> None:
    model = _model(toy_model)
    pixels = torch.randn(4, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        plain = model.encoder(pixels)[0]
        model.encoder.set_drop_path(0.5)
        assert torch.equal(model.encoder(pixels)[0], plain)  # eval: no drop
        model.encoder.train()
        model.encoder.prompt_dropout.eval()  # only the drop path random
        torch.manual_seed(0)
        dropped = model.encoder(pixels)[0]
        model.encoder.set_drop_path(0.0)
        assert torch.allclose(model.encoder(pixels)[0], plain, atol=1e-5)  # rate 0: the regular blocks
    assert not torch.allclose(dropped, plain, atol=1e-3)
    with pytest.raises(ValueError, match="drop"):
        model.encoder.set_drop_path(1.0)
    with pytest.raises(ValueError, match="drop_path"):
        TrainConfig(drop_path=-0.1)
