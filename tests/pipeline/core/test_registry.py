"""The one registry style: names listed without imports, lazy entries, argument names, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.core.registry import Registry


def test_register_list_create_and_errors() -> None:
    colours: Registry[str] = Registry("colour")
    colours.add("red", lambda: "R")

    @colours.register("shade", argument="NAME")
    def shade(name: str, dark: bool = False) -> str:
        return f"{'dark ' if dark else ''}{name}"

    assert colours.names() == ["red", "shade:NAME"]
    assert colours.create("red") == "R"
    assert colours.create("shade:teal", dark=True) == "dark teal"
    assert "shade:x" in colours and "red" in colours and "shade" not in colours and "blue" not in colours
    with pytest.raises(ValueError, match=r"unknown colour 'blue'; available: red, shade:NAME"):
        colours.get("blue")
    with pytest.raises(ValueError, match="unknown colour 'shade:'"):
        colours.get("shade:")  # a name that takes an argument needs one
    with pytest.raises(ValueError, match="colour 'red' is registered twice"):
        colours.add("red", lambda: "r")


def test_lazy_entry_is_imported_on_first_use_and_filled_by_its_decorator() -> None:
    things: Registry[object] = Registry("thing")
    things.add("path", "pathlib:PurePosixPath")
    assert things.names() == ["path"]
    assert str(things.create("path", "a/b")) == "a/b"
    things.add("later", "json:dumps")
    things.register("later")(len)  # a module registering itself by decorator fills its lazy slot
    assert things.get("later") is len


def test_segmenter_names_are_listed_without_importing_them() -> None:
    code = (
        "import sys; from segment.segmenter import available_segmenters; names = available_segmenters(); "
        "print(names, 'segment.reco' in sys.modules, 'segment.car.segmenter' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['car', 'reco', 'reco-plus', 'zegclip'] False False"


def test_every_family_names_its_choices_in_errors() -> None:
    from pipeline.core.executors import make_executor
    from segment.datasets import open_dataset
    from segment.dense_encoders import create_dense_encoder
    from segment.segmenter import create_segmenter

    with pytest.raises(ValueError, match=r"unknown executor 'ray'; available: local, dask"):
        make_executor("ray")
    with pytest.raises(ValueError, match=r"unknown dataset kind 'kitti'; available: toy, voc, voc20"):
        open_dataset("kitti", ".")
    with pytest.raises(ValueError, match=r"unknown dense encoder 'dino'; available: clip, .*timm:MODEL_NAME"):
        create_dense_encoder("dino")
    with pytest.raises(ValueError, match=r"unknown segmenter 'nope'; available: reco, reco-plus, zegclip, car"):
        create_segmenter("nope")
