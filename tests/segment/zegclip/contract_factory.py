"""The zegclip segmenter as the shared contract test builds it: toy or random weights, built in seconds."""

from __future__ import annotations

import torch

from pipeline.toy.world import WorldSpec
from segment.segmenter import Segmenter, create_segmenter
from segment.zegclip.model import ModelConfig, ZegCLIP
from segment.zegclip.vocabulary import Vocabulary, embed_texts


def build(toy_model) -> tuple[Segmenter, list[str]]:
    """(segmenter, concepts): an untrained ZegCLIP (seed 0, 4 prompt tokens) on the toy CLIP, toy classes."""
    torch.manual_seed(0)
    classes = list(WorldSpec().classes)
    model = ZegCLIP(toy_model.model.visual, ModelConfig(num_tokens=4))
    vocab = Vocabulary(classes, embed_texts(toy_model, classes))
    segmenter = create_segmenter("zegclip", model=model, vocabulary=vocab, clip=toy_model, device="cpu")
    return segmenter, classes
