"""What the web page is given: fixed label colours per concept, the checkpoints the root holds, weak concepts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from pipeline.toy.textures import STUFF_BASE_RGB


def lab(rgb: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 sRGB -> (n, 3) CIE L*a*b* (L in 0..100), through PIL's colour management."""
    transform = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(np.asarray(rgb, np.uint8)[None]), transform), float)[0]
    return np.stack([out[:, 0] * 100 / 255, out[:, 1] - 128, out[:, 2] - 128], 1)


def segment_legend(client, serve_root: Path, concepts: str | None = None) -> dict[str, list[int]]:
    image = sorted((serve_root / "benchmark" / "images").iterdir())[0].read_bytes()
    form = {"bank": "toy", **({"concepts": concepts} if concepts else {})}
    answer = client.post("/api/segment", files={"file": ("a.jpg", image, "image/jpeg")}, data=form)
    assert answer.status_code == 200, answer.text[:300]
    return {key["concept"]: key["rgb"] for key in answer.json()["legend"]}


def test_a_concept_keeps_its_colour_in_any_subset(client, serve_root):
    full = segment_legend(client, serve_root)
    assert len(full) == 13 and len({tuple(c) for c in full.values()}) == 13  # distinct
    for subset in ("heart,grass", "sky,heart", "crescent,heart,water,sand"):
        for concept, colour in segment_legend(client, serve_root, subset).items():
            assert colour == full[concept], (subset, concept)


def test_label_colours_stand_out_from_the_toy_backgrounds(client, serve_root):
    from pipeline.core.report import concept_colours

    legend = segment_legend(client, serve_root)
    colours = lab(np.array(list(legend.values())))
    backgrounds = lab(np.array(list(STUFF_BASE_RGB.values())))
    far = np.linalg.norm(colours[:, None] - backgrounds[None], axis=-1)  # (13, 5) CIE76 distances
    assert far.min() > 35, {c: round(d, 1) for c, d in zip(legend, far.min(1), strict=True)}
    apart = np.linalg.norm(colours[:, None] - colours[None], axis=-1) + np.eye(len(colours)) * 1e3
    assert apart.min() > 25  # and from each other
    assert concept_colours(["a new concept"]).tolist() == concept_colours(["a new concept"]).tolist()


def test_the_demo_palette_is_the_same_function(serve_root):
    from pipeline.core.report import PALETTE, colourise, concept_colours
    from pipeline.toy.world import WorldSpec

    classes = list(WorldSpec().classes)
    assert np.array_equal(PALETTE, concept_colours(classes))
    mask = np.arange(len(classes)).reshape(1, -1)
    assert np.array_equal(colourise(mask)[0], concept_colours(classes))


@pytest.fixture
def checkpoint_in_root(serve_root: Path, reco_plus_checkpoint: Path):
    """A ReCo+ checkpoint folder copied under the root (checkpoints/demo)."""
    shutil.copytree(reco_plus_checkpoint, serve_root / "checkpoints" / "demo")
    yield "checkpoints/demo"
    shutil.rmtree(serve_root / "checkpoints")


def test_segmenters_say_which_checkpoints_the_root_holds(client, serve_root, reco_plus_checkpoint):
    before = {s["name"]: s for s in client.get("/api/segmenters").json()}
    assert before["reco"]["ready"] and not before["reco-plus"]["ready"] and not before["zegclip"]["ready"]
    assert before["reco-plus"]["checkpoints"] == []
    shutil.copytree(reco_plus_checkpoint, serve_root / "checkpoints" / "demo")
    (serve_root / "checkpoints" / "half").mkdir()  # not a checkpoint: no model.pt
    (serve_root / "checkpoints" / "half" / "config.json").write_text("{}")
    try:
        after = {s["name"]: s for s in client.get("/api/segmenters").json()}
        assert after["reco-plus"]["ready"] and after["reco-plus"]["checkpoints"] == ["checkpoints/demo"]
        assert after["zegclip"]["checkpoints"] == [] and not after["zegclip"]["ready"]
    finally:
        shutil.rmtree(serve_root / "checkpoints")


@pytest.fixture
def weak_archive(serve_root: Path):
    """An archive of 'unicorn', a concept absent from the toy pool, flagged weak as the archive stage flags it."""
    folder = serve_root / "archives" / "toy" / "toy" / "unicorn"
    shutil.copytree(serve_root / "archives" / "toy" / "toy" / "circle", folder)
    query = json.loads((folder / "query.json").read_text())
    reason = "only 1 of its 16 items score clearly above what a pool without the concept would reach"
    query.update(concept="unicorn", weak=True, standouts=1, weak_reason=reason)
    (folder / "query.json").write_text(json.dumps(query))
    yield "unicorn"
    shutil.rmtree(folder)


def test_a_text_query_names_the_archive_of_its_concept_and_whether_it_is_weak(client, weak_archive):
    weak = client.get("/api/query", params={"text": " Unicorn ", "k": 3}).json()["concept"]
    assert weak["name"] == "unicorn" and weak["weak"] is True and weak["run"] == "toy"
    assert weak["standouts"] == 1 and weak["items"] == 16 and "clearly above" in weak["weak_reason"]
    strong = client.get("/api/query", params={"text": "star", "k": 3}).json()["concept"]
    assert strong["name"] == "star" and strong["weak"] is False
    assert client.get("/api/query", params={"text": "a red thing", "k": 3}).json()["concept"] is None
