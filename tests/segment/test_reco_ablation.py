"""`coarchive eval --ablation reco`: ReCo's inference components (saliency product, CRF) on one bank over a benchmark.

The paper's full component table, banks built each way, is measured on the toy world in
tests/pipeline/toy/test_reco_ablation.py.
"""

from __future__ import annotations

import pytest

from pipeline.toy.world import WorldSpec


def test_run_ablation_on_a_benchmark(toy_model, toy_world, tmp_path) -> None:
    """The `coarchive eval --ablation reco` entry: inference rows on one bank over a toy-layout benchmark."""
    import json

    from pipeline.toy.bank_quality import toy_archives
    from pipeline.toy.quality import POOL_SEED, render_many
    from segment.cosegment import build_bank
    from segment.datasets import open_dataset
    from segment.dense_encoders import ClipDenseEncoder, create_dense_encoder
    from segment.reco_ablation import INFERENCE_STEPS, run_ablation

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
