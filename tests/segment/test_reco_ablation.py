"""ReCo's component ablation on a CI-sized toy protocol: what holds, with floors a little under measured values.

Protocol: 1,500 pool scenes at 5% rare rate, top-20 archives, 80 held-out scenes, clip-penultimate features.
Measured (mIoU / pixel accuracy) on 2 cores: text labels 0.422 / 0.890; none 0.523 / 0.920; +DenseCLIP 0.454;
+LGC 0.461; +CE 0.462; +both 0.461 / 0.907; +CRF 0.461 / 0.919; without the saliency product: CE 0.551,
LGC+CE 0.546 / 0.925, LGC+CE+CRF 0.574 / 0.938.

What holds: every ReCo row beats text-only MaskCLIP labels; context elimination helps; the CRF helps (and never
costs more than a little); after the saliency step the components do not hurt. What does not hold on the toy CLIP:
the DenseCLIP saliency product itself costs about 0.07 mIoU (its text saliency is inverted for cross and flat for
star and ring), so ReCo's "each component helps, in order" fails at its first step; LGC alone is about neutral.
"""

from __future__ import annotations

import pytest

from pipeline.toy.world import WorldSpec
from segment.reco_ablation import NO_SALIENCY_STEPS, PAPER_STEPS, TEXT, measure_reco_ablation

SPEC = WorldSpec(rare_rate=0.05)
THINGS = list(SPEC.things)


@pytest.fixture(scope="module")
def result(toy_model):
    steps = {**PAPER_STEPS, **{n: NO_SALIENCY_STEPS[n] for n in ("CE, no saliency", "both, no saliency")}}
    steps["both+CRF, no saliency"] = NO_SALIENCY_STEPS["both+CRF, no saliency"]
    return measure_reco_ablation(toy_model, SPEC, pool_size=1500, bench_size=80, k=20, steps=steps)


def test_archives_are_precise(result) -> None:
    assert min(result.settings["archive_precision"].values()) >= 0.9


def test_floors(result) -> None:
    m = result.miou
    assert m[TEXT] == pytest.approx(0.42, abs=0.03)
    assert m["none"] >= 0.49
    assert m["+both"] >= 0.43 and m["+CRF"] >= 0.43
    assert m["both, no saliency"] >= 0.51
    assert m["both+CRF, no saliency"] >= 0.54
    assert result.pixel_accuracy["both+CRF, no saliency"] >= 0.92


def test_every_reco_row_beats_text_labels(result) -> None:
    for row in PAPER_STEPS:
        assert result.miou[row] >= result.miou[TEXT] + 0.02, row
        assert result.things_miou(row, THINGS) >= result.things_miou(TEXT, THINGS) + 0.01, row
    assert result.things_miou("both+CRF, no saliency", THINGS) >= result.things_miou(TEXT, THINGS) + 0.15


def test_context_elimination_helps(result) -> None:
    assert result.miou["CE, no saliency"] >= result.miou["none"] + 0.01  # measured +0.028
    assert result.miou["+CE"] >= result.miou["+DenseCLIP"]  # measured +0.008


def test_crf_helps(result) -> None:
    m, acc = result.miou, result.pixel_accuracy
    assert m["both+CRF, no saliency"] >= m["both, no saliency"] + 0.01  # measured +0.028
    assert m["+CRF"] >= m["+both"] - 0.01  # measured +0.000
    assert acc["+CRF"] >= acc["+both"] + 0.005  # measured +0.012


def test_components_after_the_saliency_step_do_not_hurt(result) -> None:
    m = result.miou
    assert m["+LGC"] >= m["+DenseCLIP"] - 0.005
    assert m["+both"] >= m["+DenseCLIP"] - 0.005
    assert m["+both"] >= max(m["+LGC"], m["+CE"]) - 0.01


def test_saliency_product_recorded(result) -> None:
    """The toy CLIP's saliency product costs mIoU; record the size so that a change to it is noticed."""
    cost = result.miou["none"] - result.miou["+DenseCLIP"]  # measured 0.069
    assert -0.02 <= cost <= 0.12


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
