"""`coarchive reco-plus train` end to end (bank -> pseudo-labels -> checkpoint -> `coarchive eval`), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.app.cli import main
from pipeline.toy.world import WorldSpec, render_scene
from segment.reco_plus import read_checkpoint_meta
from tests.segment.test_reco_plus import tiny_checkpoint
from tests.segment.test_segment_cli import archive_root  # noqa: F401  (module fixture: four toy archives)


@pytest.fixture(scope="module")
def bank(archive_root: Path, toy_model) -> Path:  # noqa: F811
    code = main(["--quiet", "cosegment", "--root", str(archive_root), "--run", "r1", "--encoder", "clip"])
    assert code == 0
    return archive_root / "banks" / "toy" / "r1"


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six toy scenes as PNG and JPEG files of two sizes, in nested folders, plus one corrupt file."""
    folder = tmp_path_factory.mktemp("targets")
    (folder / "sub").mkdir()
    for i in range(6):
        image = Image.fromarray(render_scene(WorldSpec(), 21, i).image)
        if i % 2:
            image.resize((120, 100)).save(folder / "sub" / f"{i}.jpg")
        else:
            image.save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["reco-plus", "train", "--help"])
    assert exit_info.value.code == 0 and "--images" in capsys.readouterr().out


def test_train_and_resume(bank: Path, targets: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ckpt"
    args = ["--bank", str(bank), "--images", str(targets), "--out", str(out), "--recipe", "toy", "--steps", "3"]
    assert main(["reco-plus", "train", *args, "--batch-size", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable files: broken.jpg" in printed and "pseudo-labelled 6 images into 4" in printed
    config, classes, step = read_checkpoint_meta(out)
    assert (config.arch, config.steps, step) == ("lraspp_mobilenet_v3_large", 3, 3)
    assert classes == sorted(["grass", "sky", "circle", "square"])
    # the resumed schedule is already complete: nothing more to train, same checkpoint
    assert main(["reco-plus", "train", *args, "--batch-size", "2", "--quiet", "--resume"]) == 0
    assert read_checkpoint_meta(out)[2] == 3


def test_eval_reads_a_checkpoint(toy_world: Path, tmp_path: Path) -> None:
    tiny_checkpoint(tmp_path / "ckpt")  # all 13 toy classes, as `coarchive eval --dataset toy` needs
    args = ["--dataset", "toy", "--data-root", str(toy_world), "--segmenter", "reco-plus", "--quiet"]
    assert main(["eval", *args, "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert result["segmenter"] == "reco-plus" and 0 <= result["miou"] <= 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--images": "missing"}, "image folder not found"),
        ({"--images": "empty"}, "no readable images"),
        ({"--arch": "resnet9000"}, "unknown --arch"),
        ({"--size": "4"}, "--size must be at least 8"),
    ],
)
def test_bad_input_is_one_line(bank: Path, tmp_path: Path, change: dict, message: str, capsys) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.png").write_bytes(b"\x89PNG broken")
    options = {"--bank": str(bank), "--images": str(tmp_path / "empty"), "--out": str(tmp_path / "o")}
    options.update({k: str(tmp_path / v) if k == "--images" else v for k, v in change.items()})
    assert main(["reco-plus", "train", *[x for kv in options.items() for x in kv], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
