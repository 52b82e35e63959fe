"""Recipes back from checkpoint JSON: tuples restored, unknown keys named."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from segment.reco_plus import TrainConfig as ReCoPlusConfig
from segment.zegclip.train import TrainConfig as ZegCLIPConfig


@pytest.mark.parametrize("cls", [ReCoPlusConfig, ZegCLIPConfig])
def test_round_trip_through_json_restores_tuples(cls) -> None:
    config = cls()
    again = cls.from_dict(json.loads(json.dumps(asdict(config))))
    assert again == config and isinstance(again.scale_range, tuple)


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown TrainConfig keys \['stepz'\]"):
        ReCoPlusConfig.from_dict({"stepz": 3})
