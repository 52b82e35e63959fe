"""`coarchive car trace`: the query set per iteration; bad input is one line and exit status 2."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.app.cli import main
from pipeline.toy.quality import BENCH_SEED, render_many
from pipeline.toy.world import WorldSpec


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> str:
    images, _, _ = render_many(WorldSpec(), BENCH_SEED, 1, workers=1, progress=False)
    path = tmp_path_factory.mktemp("car") / "scene.png"
    Image.fromarray(images[0]).save(path)
    return str(path)


def test_trace_prints_each_iteration(scene, capsys) -> None:
    assert main(["car", "trace", scene, "--concepts", "sky,square,circle,grass", "--max-iterations", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("iteration 1: 4 queries [sky ") and "stopped: " in out and "label areas: " in out


def test_trace_defaults_to_the_words_the_toy_clip_knows(scene, capsys) -> None:
    """Without --concepts: the toy world's classes, which the application gives for the toy CLIP."""
    assert main(["car", "trace", scene, "--max-iterations", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"iteration 1: {len(WorldSpec().classes)} queries [{WorldSpec().classes[0]} ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concepts", "sky,unicorn"], "unicorn"),
        (["--model", "ViT-B-16"], "give --concepts"),  # a CLIP that declares no vocabulary, and no bank
        (["--confidence-threshold", "1.5"], "confidence_threshold"),
        (["--max-iterations", "0"], "max_iterations"),
        (["--prompts", "circle+sparkle"], "sparkle"),
        (["--preset", "kitti"], "kitti"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(scene, capsys, argv, message) -> None:
    assert main(["car", "trace", scene, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coarchive: error:") and message in err and "\n" not in err


def test_missing_image_and_help(capsys, tmp_path) -> None:
    assert main(["car", "trace", str(tmp_path / "nope.png")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["car", "trace", "--help"])
    assert done.value.code == 0 and "iteration" in capsys.readouterr().out


def test_segmenter_rejects_bad_settings(toy_model) -> None:
    from segment.car.segmenter import CaRSegmenter

    with pytest.raises(ValueError, match="mask_threshold"):
        CaRSegmenter(toy_model, mask_threshold=-0.1)
    with pytest.raises(ValueError, match="unknown CaR settings"):
        CaRSegmenter(toy_model, mask_treshold=0.3)
    with pytest.raises(ValueError, match="preset"):
        CaRSegmenter(toy_model, preset="toy", settings=CaRSegmenter(toy_model).settings)
    seg = CaRSegmenter(toy_model, max_iterations=1)
    with pytest.raises(ValueError, match="uint8"):
        seg.predict(np.zeros((8, 8, 3), np.float32), ["sky"])
    only = seg.predict(np.zeros((8, 8, 3), np.uint8), ["background"])
    assert only.scores.shape == (1, 8, 8) and (only.labels == 0).all()
