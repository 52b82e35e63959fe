"""ReCo+ on the toy world: a network trained on ReCo's CRF pseudo-labels of unlabelled target scenes.

Measured (mIoU on the 80 benchmark scenes; LGC+CE bank from a 1,500-scene pool, k=20, no saliency, CRF):
text-only 0.422, ReCo 0.574. LR-ASPP MobileNetV3 from random weights on 400 pseudo-labelled targets, Adam,
backbone lr x1, lr 2e-3: 150 steps 0.376, 400 steps 0.436, 1,500 steps (segment.reco_plus's toy recipe, about 3 min
on 2 cores) 0.609: above the ReCo that taught it, which is what the test holds. Re-measure with
`python -m pipeline.toy.reco_plus_quality`.
"""

from __future__ import annotations

import pytest

from pipeline.toy.reco_plus_quality import toy_experiment
from pipeline.toy.world import WorldSpec
from segment.reco_plus import TOY_CONFIG

SPEC = WorldSpec(rare_rate=0.05)


@pytest.fixture(scope="module")
def experiment(toy_model):
    """ReCo (LGC+CE, CRF) pseudo-labels 400 target scenes; ReCo+ trains the toy recipe; both scored on 80 held-out."""
    return toy_experiment(toy_model, SPEC, pool_size=1500, bench_size=80, k=20, target_size=400, config=TOY_CONFIG)


def test_reco_plus_beats_the_reco_that_taught_it(experiment) -> None:
    m = experiment
    assert m["reco"] == pytest.approx(0.574, abs=0.02)  # same bank and inference as the ablation's CRF row
    assert m["reco-plus"] >= m["reco"] + 0.015  # measured 0.609 vs 0.574
