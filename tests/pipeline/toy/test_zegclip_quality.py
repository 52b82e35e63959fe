"""ZegCLIP on the toy world: the inductive row of `python -m pipeline.toy.zegclip_quality` (1,000 steps, star
and ring unseen) must learn the seen classes and transfer to the unseen shapes through their names alone."""

from __future__ import annotations

from pipeline.toy.zegclip_quality import ToySettings, run_toy, table

# Measured on held-out worlds 0 / 1 / 2 (`python -m pipeline.toy.targets --measure zegclip`, the inductive row):
SEEN_FLOOR = 0.45  # 0.531 / 0.523 / 0.472
UNSEEN_FLOOR = 0.125  # 0.166 / 0.137 / 0.140
HIOU_FLOOR = 0.20  # 0.252 / 0.217 / 0.216
PACC_FLOOR = 0.85  # 0.891 / 0.888 / 0.866


def test_inductive_run_learns_seen_classes_and_transfers_to_unseen(toy_model) -> None:
    results = run_toy(toy_model, ToySettings(), rows=("inductive",))
    row = results["inductive"]
    assert row["mIoU seen"] >= SEEN_FLOOR, table(results)
    assert row["mIoU unseen"] >= UNSEEN_FLOOR, table(results)
    assert row["hIoU"] >= HIOU_FLOOR, table(results)
    assert row["pAcc"] >= PACC_FLOOR, table(results)
