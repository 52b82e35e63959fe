"""Labelling by a segment bank alone: cosine to each reference, upsampled; each pixel takes its nearest reference."""

from __future__ import annotations

import numpy as np
import torch

from segment.bank import SegmentBank
from segment.bank_labels import bank_logits, label_with_bank
from segment.dense_encoders import create_dense_encoder


def test_each_cell_takes_the_reference_it_equals() -> None:
    references = torch.eye(3, 8)  # (C, d)
    bank = SegmentBank(["a", "b", "c"], references)
    layout = torch.tensor([[2, 0], [1, 2]])  # which reference each of the 2 x 2 cells holds
    features = references[layout].unsqueeze(0)  # (1, 2, 2, d)
    logits = bank_logits(features, bank, (2, 2))  # (1, 3, 2, 2)
    assert logits.shape == (1, 3, 2, 2)
    assert torch.equal(logits.argmax(1)[0], layout)
    assert torch.allclose(logits.amax(1), torch.ones(1, 2, 2))
    assert bank_logits(features, bank, (6, 4)).shape == (1, 3, 6, 4)  # bilinear upsampling to the image size


def test_labels_are_the_argmax_of_the_logits_in_batches(toy_model) -> None:
    encoder = create_dense_encoder("clip-penultimate", clip=toy_model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    features = encoder.encode(images)  # (3, h, w, d)
    bank = SegmentBank(["x", "y"], torch.stack([features[0, 0, 0], features[1, -1, -1]]).float())
    labels = label_with_bank(encoder, bank, images, batch_size=2)
    assert labels.shape == (3, 40, 48) and labels.dtype == np.uint8
    want = bank_logits(features, bank, (40, 48)).argmax(1).numpy()
    np.testing.assert_array_equal(labels, want)
