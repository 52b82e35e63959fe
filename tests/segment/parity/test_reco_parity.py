"""ReCo against the official NoelShin/reco outputs stored in fixtures/reco.npz (the command that made it is inside).

The inputs are regenerated from a seed (checksums prove they are the ones the official code saw); the official code
is not needed. Where coarchive deliberately differs (the seed rule, unit encoder features) the share is pinned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.parity import _reco_inputs as inp
from bench.parity.reco import TableEncoder, coarchive_encoder, run_coarchive

FIXTURE = Path(__file__).parent / "fixtures" / "reco.npz"


@pytest.fixture(scope="module")
def official() -> dict:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def inputs() -> inp.StageInputs:
    return inp.stage_inputs()


@pytest.fixture(scope="module")
def saliency(inputs) -> TableEncoder:
    return TableEncoder(inputs.clip, "denseclip-table")


@pytest.fixture(scope="module")
def unit(inputs) -> TableEncoder:
    return TableEncoder({k: inputs.unit(k) for k in inputs.raw}, "table")


def per_concept(official: dict, stage: str, prefix: str = "") -> dict[str, np.ndarray]:
    return {c: official[f"{prefix}{stage}__{c}"] for c in inp.CONCEPTS}


def test_inputs_are_the_ones_the_official_code_saw(official, inputs) -> None:
    sums = [inp.checksum(inputs.raw[k]) for k in sorted(inputs.raw)] + [
        inp.checksum(inputs.clip[k]) for k in sorted(inputs.clip)
    ]
    assert sums == official["input_checksums"].tolist()
    assert "--write-fixture" in str(official["command"])


def test_encoder_loads_an_official_checkpoint_and_gives_its_features(official, tmp_path) -> None:
    shapes = {k: tuple(v) for k, v in json.loads(str(official["shapes"])).items()}
    encoder = coarchive_encoder(inp.encoder_state(shapes), tmp_path)
    got = encoder.encode([inp.query_image(), inp.archive_images("cat")[0]])  # (2, 6, 6, 48) float32, unit
    want = F.normalize(torch.from_numpy(official["encoder_features"]).double(), dim=-1)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=0)


@pytest.fixture(scope="module")
def parity_run(unit, saliency, inputs) -> dict:
    return run_coarchive(unit, saliency, inputs.text, seed_rule="official")


def test_official_seed_rule_matches_every_stage_in_float64(official, parity_run) -> None:
    ours = parity_run
    for stage in ("lgc", "weights", "reference"):
        for c, want in per_concept(official, stage).items():
            got = ours[stage][c]
            assert got.dtype == torch.float64, (stage, c)
            torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-12, rtol=0, msg=f"{stage} {c}")
    for c, want in per_concept(official, "seeds").items():
        np.testing.assert_array_equal(ours["seeds"][c], want, err_msg=c)
    refs = torch.stack([torch.from_numpy(official[f"reference__{c}"]) for c in ours["bank"].concepts])
    torch.testing.assert_close(ours["bank"].references.double(), refs, atol=1e-7, rtol=0)  # float32 storage
    torch.testing.assert_close(ours["dt"].double(), torch.from_numpy(official["dt"]), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(ours["labels"], official["labels"])
    # The CRF: a softmax unary and BGR pixels as the official; on the official's own (round-tripped) pixels the same
    # probabilities, on the exact pixels (coarchive keeps them) the same labels.
    want = torch.from_numpy(official["crf_probs"])
    torch.testing.assert_close(ours["crf_probs_official_image"], want, atol=1e-6, rtol=0)
    assert float((ours["crf_probs"] - want).abs().max()) < 0.01
    np.testing.assert_array_equal(ours["crf_labels"], official["crf_labels"])


def test_the_seed_rule_is_recorded_and_checked(parity_run, unit, saliency, inputs) -> None:
    from segment.cosegment import ConceptImages, build_bank, seed_scores

    assert parity_run["bank"].params["seed_rule"] == "official"
    with pytest.raises(ValueError, match="unknown seed rule 'bogus'"):
        seed_scores(torch.ones(2, 1, 1, 3), rule="bogus")
    archive = [ConceptImages("cat", inp.archive_images("cat"), inputs.text["cat"])]
    with pytest.raises(ValueError, match="unknown seed rule 'bogus'"):
        build_bank(archive, unit, saliency, seed_rule="bogus")


def test_paper_seed_rule_is_the_pinned_difference(official, unit, saliency, inputs) -> None:
    """coarchive's default: a pixel's own image is left out and image j is image j (not images j..2j)."""
    ours = run_coarchive(unit, saliency, inputs.text)
    seeds = {c: float((ours["seeds"][c] == want).all(1).mean()) for c, want in per_concept(official, "seeds").items()}
    assert seeds == PINNED_SEEDS, seeds
    for c, want in per_concept(official, "lgc").items():  # LGC does not depend on the seeds
        torch.testing.assert_close(ours["lgc"][c], torch.from_numpy(want), atol=1e-12, rtol=0)
    same = float((ours["labels"] == official["labels"]).mean())
    assert same == pytest.approx(PINNED_PAPER_LABELS, abs=1e-9), same
    np.testing.assert_array_equal(ours["crf_labels"], official["crf_labels"])


def test_unit_features_are_the_pinned_difference(official, parity_run) -> None:
    """The official encoder's tokens are not unit length and its reference averages them raw; coarchive's are unit."""
    for c, want in per_concept(official, "seeds", "raw_").items():
        np.testing.assert_array_equal(parity_run["seeds"][c], want, err_msg=c)  # seeds use cosines: unchanged
    raw = per_concept(official, "reference", "raw_")
    cos = {c: round(float(parity_run["reference"][c] @ torch.from_numpy(w)), 4) for c, w in raw.items()}
    assert cos == PINNED_RAW_COS, cos
    same = float((parity_run["labels"] == official["raw_labels"]).mean())
    assert same == pytest.approx(PINNED_RAW_LABELS, abs=1e-9), same


def test_end_to_end_from_pixels(official, saliency, inputs, tmp_path) -> None:
    """The tiny DeiT on both sides (float32), loaded by coarchive from an official-layout checkpoint."""
    shapes = {k: tuple(v) for k, v in json.loads(str(official["shapes"])).items()}
    encoder = coarchive_encoder(inp.encoder_state(shapes), tmp_path)
    ours = run_coarchive(encoder, saliency, inputs.text, seed_rule="official")
    for c, want in per_concept(official, "seeds", "e2e_").items():
        np.testing.assert_array_equal(ours["seeds"][c], want, err_msg=c)
    np.testing.assert_array_equal(ours["labels"], official["e2e_labels"])
    np.testing.assert_array_equal(ours["crf_labels"], official["e2e_crf_labels"])


# Measured with the fixture (docs/parity/reco.md): where the paper rule moves a seed, and what that does.
PINNED_SEEDS = {"cat": 0.8, "dog": 1.0, "sky": 1.0, "road": 0.8}
PINNED_PAPER_LABELS = 0.9908854166666666  # share of the query's pixels with the official label
PINNED_RAW_COS = {"cat": 0.9943, "dog": 0.9921, "sky": 0.9973, "road": 0.9825}  # cos(ours, official raw reference)
PINNED_RAW_LABELS = 0.9982638888888888
