"""ReCo's component ablation on the toy world: each component helps, in the paper's order (CI-sized protocol).

Protocol: a world with context (every scene's things are natives of its background, ABLATION_CONTEXT_RATE), 1,500
pool scenes at 5% rare rate, top-20 archives, 80 held-out scenes, clip-penultimate bank features, the bundled toy
CLIP. Measured on 2 cores, mIoU / pixel accuracy: text labels 0.416 / 0.894; none 0.387 / 0.744; +DenseCLIP
0.430 / 0.910; +LGC 0.452 / 0.913; +CE 0.461 / 0.917; +both 0.4614 / 0.918; +CRF 0.471 / 0.929 (the paper:
5.7, 21.8, 23.1, 26.0, 26.6, 27.2). Share of the things' seeds that land on the thing: none 0.44, LGC 0.55,
CE 0.90, both 0.94.
"""

from __future__ import annotations

import itertools

import pytest

from pipeline.toy.world import WorldSpec
from segment.reco_ablation import CI_PROTOCOL, CI_SPEC, PAPER_STEPS, TEXT, measure_reco_ablation

THINGS = list(CI_SPEC.things)
# Least gain of each row over the row before it, a little under the measured gain.
GAINS = {"+DenseCLIP": 0.025, "+LGC": 0.01, "+CE": 0.005, "+both": 0.0, "+CRF": 0.005}  # 0.043 .021 .009 .0004 .010


@pytest.fixture(scope="module")
def result(toy_model):
    return measure_reco_ablation(toy_model, CI_SPEC, steps=PAPER_STEPS, **CI_PROTOCOL)


def test_archives_are_precise(result) -> None:
    assert min(result.settings["archive_precision"].values()) >= 0.9


def test_each_component_helps_in_the_papers_order(result) -> None:
    m, acc = result.miou, result.pixel_accuracy
    assert list(m)[1:] == list(PAPER_STEPS)
    assert m["none"] >= 0.35
    for before, row in itertools.pairwise(PAPER_STEPS):
        assert m[row] >= m[before] + GAINS[row], (before, row, m)
        assert acc[row] >= acc[before], (before, row, acc)
    assert m["+CRF"] >= 0.45 and acc["+CRF"] >= 0.92


def test_lgc_and_ce_keep_the_seeds_on_the_thing(result) -> None:
    """Where the bank components act: the share of seeds on the concept rises none < LGC < CE < both."""
    seeds = {bank: result.mean_seed_precision(bank, THINGS) for bank in ("none", "LGC", "CE", "both")}
    assert seeds["none"] <= 0.5, seeds  # the shared background wins the seeds
    assert seeds["LGC"] >= seeds["none"] + 0.05, seeds
    assert seeds["CE"] >= seeds["LGC"] + 0.2, seeds
    assert seeds["both"] >= seeds["CE"] + 0.01 and seeds["both"] >= 0.9, seeds


def test_reco_beats_text_labels_from_the_saliency_step_on(result) -> None:
    for row in list(PAPER_STEPS)[1:]:
        assert result.miou[row] >= result.miou[TEXT] + 0.01, row
    assert result.things_miou("+CRF", THINGS) >= result.things_miou(TEXT, THINGS) + 0.04  # measured +0.058


def test_run_ablation_on_a_benchmark(toy_model, toy_world, tmp_path) -> None:
    """The `coarchive eval --ablation reco` entry: inference rows on one bank over a toy-layout benchmark."""
    import json

    from pipeline.toy.quality import POOL_SEED, render_many
    from segment.cosegment import build_bank
    from segment.datasets import open_dataset
    from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
    from segment.reco_ablation import INFERENCE_STEPS, run_ablation
    from segment.toy_bank_quality import toy_archives

    spec = WorldSpec()
    images, masks, _ = render_many(spec, POOL_SEED, 240, workers=1, progress=False)
    archives, _ = toy_archives(toy_model, spec, images, masks, k=6)
    encoder = create_dense_encoder("clip-penultimate", clip=toy_model)
    build_bank(archives, encoder, ClipDenseEncoder(toy_model), lgc=True, ce=True).save(tmp_path / "bank")
    dataset = open_dataset("toy", toy_world)
    table = run_ablation(dataset, tmp_path / "bank", model="toy", out=tmp_path / "out", device="cpu")
    saved = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert list(saved["rows"]) == list(INFERENCE_STEPS) and saved["lgc"] is True
    for name, row in saved["rows"].items():
        assert row["images"] == len(dataset) and 0.2 <= row["miou"] <= 1, name
        assert f"| {name} |" in table
    with pytest.raises(ValueError, match="--bank"):
        run_ablation(dataset, None)
