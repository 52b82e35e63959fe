"""Near-duplicate removal inside an archive, on the stored image embeddings of its hits.

Two items are near-duplicates when the cosine of their stored image embeddings reaches a threshold that depends on
the model, because models spread images differently. For real CLIPs it is 0.95, the value commonly used for CLIP
image embeddings (not measured here: no real weights offline). The toy CLIP packs its world tightly: distinct toy
images of one concept reach cosine 0.998 (one star on brick looks much like another) while copies of an image sit
at 0.9999, so for it only copies count (0.999). tests/archives/test_context_world.py holds that on a pool with copies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.models import TOY_NAME, ModelRef
from pipeline.pool.embed import split_id

CLIP_THRESHOLD = 0.95  # real CLIPs: re-encoded, resized or slightly cropped copies
TOY_THRESHOLD = 0.999  # the toy CLIP: copies only (distinct toy images reach 0.998)


def default_threshold(ref: ModelRef) -> float:
    """The cosine at which two of the model's image embeddings count as near-duplicates (see the module text)."""
    return TOY_THRESHOLD if ref.name == TOY_NAME else CLIP_THRESHOLD


class StoredVectors:
    """The pool's stored embeddings, read row by row from memory-mapped embeddings/{model_id}/{shard}.npy."""

    def __init__(self, embeddings: Path) -> None:
        self.embeddings = Path(embeddings)
        self._shards: dict[int, np.ndarray] = {}

    def _shard(self, shard: int) -> np.ndarray:
        if shard not in self._shards:
            path = self.embeddings / f"{shard:05d}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"embedding shard not found: {path}")
            self._shards[shard] = np.load(path, mmap_mode="r")  # (n, d) float16
        return self._shards[shard]

    def get(self, ids: list[int]) -> np.ndarray:
        """Vectors (len(ids), d) float32 of sample ids, in the order given."""
        rows = [self._shard(shard)[row] for shard, row in map(split_id, ids)]
        return np.asarray(rows, dtype=np.float32).reshape(len(ids), -1)


def greedy_dedup(vectors: np.ndarray, threshold: float, keep: int) -> tuple[list[int], int]:
    """Positions of the first `keep` rows (rank order) whose cosine to every kept earlier row is below `threshold`.

    `vectors` (n, d) are unit rows in rank order. Returns the kept positions and how many rows were dropped as
    near-duplicates before `keep` were found.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"dedup threshold must be in (0, 1], got {threshold}")
    kept: list[int] = []
    dropped = 0
    for i in range(len(vectors)):
        if len(kept) >= keep:
            break
        if kept and float(np.max(vectors[kept] @ vectors[i])) >= threshold:
            dropped += 1
            continue
        kept.append(i)
    return kept, dropped
