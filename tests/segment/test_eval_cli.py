"""`coarchive eval`: --help, end to end on a tiny toy-layout benchmark with test segmenters, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tests.segment.eval_segmenters as test_segmenters
from pipeline.app.cli import main

CLASSES = ["grass", "sky", "circle", "square"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A toy-layout benchmark of 5 images (wide flat stripes, red channel = class); returns (root, truth counts)."""
    root = tmp_path_factory.mktemp("evalbench")
    bench = root / "benchmark"
    (bench / "images").mkdir(parents=True)
    (bench / "masks").mkdir()
    (bench / "splits").mkdir()
    counts = np.zeros(len(CLASSES), np.int64)
    ids = []
    for i in range(5):
        mask = np.zeros((32, 48), np.uint8)
        mask[:, 16:32] = 1 + i % 3
        mask[:, 32:] = 3 if i % 2 else 0
        image = np.zeros((32, 48, 3), np.uint8)
        image[..., 0] = test_segmenters.OFFSET + test_segmenters.STEP * mask
        image[..., 1:] = 100
        Image.fromarray(image).save(bench / "images" / f"toy_{i:06d}.jpg", quality=95, subsampling=0)
        Image.fromarray(mask).save(bench / "masks" / f"toy_{i:06d}.png")
        counts += np.bincount(mask.ravel(), minlength=len(CLASSES))
        ids.append(f"toy_{i:06d}")
    (bench / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (bench / "splits" / "val.txt").write_text("\n".join(ids) + "\n")
    return root, counts


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: coarchive eval" in out and "--data-root" in out and "coco-stuff27" in out


def test_help_lists_every_dataset_kind() -> None:
    from segment.commands import DATASET_KINDS_HELP
    from segment.datasets import DATASET_KINDS

    assert DATASET_KINDS_HELP.split(", ") == DATASET_KINDS


def test_constant_end_to_end(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, counts = bench
    out = tmp_path / "out"
    args = ["eval", "--dataset", "toy", "--data-root", str(root), "--segmenter", "test-constant"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    expected = counts[1] / counts.sum()  # every pixel called 'sky'
    assert data["pixel_accuracy"] == pytest.approx(expected, abs=1e-6)
    assert data["iou"]["sky"] == pytest.approx(expected, abs=1e-6) and data["iou"]["grass"] == 0.0
    assert data["miou"] == pytest.approx(expected / 4, abs=1e-6) and data["images"] == 5
    assert f"mIoU {100 * expected / 4:.1f} %" in printed and "circle" in printed
    assert (out / "report.html").read_text().count("<tr>") >= 1 + 1 + len(CLASSES) + 1


def test_oracle_with_options_and_protocol(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = bench
    out = tmp_path / "oracle"
    args = ["eval", "--dataset", "toy", "--data-root", str(root / "benchmark"), "--segmenter", "test-oracle"]
    assert main([*args, "--crf", "--limit", "3", "--out", str(out), "--quiet"]) == 0  # --crf: an option it takes
    data = json.loads((out / "results.json").read_text())
    assert data["images"] == 3 and data["miou"] > 0.99 and data["pixel_accuracy"] > 0.99  # JPEG edges aside
    assert data["protocol"] == {"mode": "whole", "size": None, "stride": None}
    assert "wrote" in capsys.readouterr().out
    # Short side 16: stripe edges blur in the halved image, the labels still come back at full size.
    assert main([*args, "--protocol", "resize", "--size", "16", "--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["protocol"] == {"mode": "resize", "size": 16, "stride": None} and data["pixel_accuracy"] > 0.9


def _error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coarchive: error: ") and "\n" not in err
    return err


def test_errors(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = bench
    base = ["eval", "--data-root", str(root), "--out", str(tmp_path / "x"), "--quiet"]
    err = _error(
        [*base[:1], "--dataset", "toy", "--data-root", str(tmp_path / "nope"), "--segmenter", "test-oracle"], capsys
    )
    assert "missing toy benchmark folder" in err and "nope" in err
    assert "unknown dataset kind 'pascal'" in _error(
        [*base, "--dataset", "pascal", "--segmenter", "test-oracle"], capsys
    )
    err = _error([*base, "--dataset", "toy", "--segmenter", "segformer"], capsys)
    assert "unknown segmenter 'segformer'" in err and "test-oracle" in err
    err = _error([*base, "--dataset", "toy", "--segmenter", "test-oracle", "--bank", str(tmp_path)], capsys)
    assert "segmenter 'test-oracle' takes no --bank" in err
    assert "unknown split 'test'" in _error([*base, "--dataset", "toy", "--split", "test"], capsys)


def test_reco_needs_a_bank(bench, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = bench
    err = _error(["eval", "--dataset", "toy", "--data-root", str(root), "--segmenter", "reco", "--quiet"], capsys)
    assert "segmenter 'reco' needs --bank" in err


def test_ablation_needs_a_bank(bench, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = bench
    err = _error(["eval", "--dataset", "toy", "--data-root", str(root), "--ablation", "reco", "--quiet"], capsys)
    assert "needs a bank folder (--bank)" in err
