"""OpenMP's wait policy for CPU embedding: idle model threads sleep, so the decode threads sharing the cores run.

Between two parallel operators of a forward pass, libgomp's threads spin for a while before they sleep. When
JPEG decoding shares the same cores (the embed stage on CPU), that spinning takes the cycles the decoders need:
on 2 cores, `OMP_WAIT_POLICY=PASSIVE` embedded the toy CLIP about 15% faster end to end, with identical vectors.
It is no default for the whole tool: faiss's k-means (its own libgomp) was about 15% slower with it.
The policy is read once, when an OpenMP runtime is loaded, so it is set before torch is imported.
"""

from __future__ import annotations

from pipeline.core.env_before_load import set_before_load

VARIABLE = "OMP_WAIT_POLICY"


def sleep_when_idle() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE for this process and its children unless the user chose a policy; return
    whether this process's OpenMP runtime follows it (False when one was chosen or torch is loaded already)."""
    return set_before_load(VARIABLE, "PASSIVE", "torch", "idle OpenMP threads sleep while images decode")
