"""Banks feed ZegCLIP: archive images of bank-only concepts, with ReCo pseudo-masks, become training samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segment.reco import square_resize
from segment.segmenter import Segmenter
from segment.zegclip.data import IGNORE, TrainingSet


def archive_training_set(
    reco: Segmenter,
    archives: Mapping[str, Sequence[np.ndarray]],
    label_concepts: Sequence[str],
    size: int,
    batch_size: int = 32,
) -> TrainingSet:
    """Each archive's images (square-resized to `size`) labelled by `reco` over `label_concepts`; only the pixels
    given to the archive's own concept are kept (everything else is IGNORE). Classes: the archives' concepts."""
    concepts = list(archives)
    missing = [c for c in concepts if c not in label_concepts]
    if missing:
        raise ValueError(f"archive concepts {missing} are not among the concepts ReCo labels with")
    images, labels = [], []
    for i, concept in enumerate(concepts):
        squares = [square_resize(np.asarray(im), size) for im in archives[concept]]
        if not squares:
            raise ValueError(f"the archive of {concept!r} holds no images")
        own = list(label_concepts).index(concept)
        for start in range(0, len(squares), batch_size):
            chunk = squares[start : start + batch_size]
            for image, seg in zip(chunk, reco.predict_batch(chunk, list(label_concepts)), strict=True):
                images.append(image)
                labels.append(np.where(seg.labels == own, i, IGNORE).astype(np.uint8))  # (size, size)
    return TrainingSet(images, labels, concepts)


def read_run_archives(
    run_dir: Path | str, concepts: Sequence[str], pool: Path | str | None = None, k: int | None = None
) -> dict[str, list[np.ndarray]]:
    """concept -> its archive's images (rank order, at most k) from archives/{model_id}/{run}/."""
    from archives.archive import archive_images, list_archives
    from segment.bank_from_archives import select_archives

    out = {}
    for archive in select_archives(list_archives(run_dir), list(concepts)):
        _, images = archive_images(archive, pool)
        out[archive.concept] = images[:k] if k else images
    return out
