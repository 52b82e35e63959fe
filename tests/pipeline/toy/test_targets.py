"""The multi-world target table: one JSON per (measurement, world), read back on resume, mean ± sd per metric."""

from __future__ import annotations

import json

import pytest

from pipeline.toy import targets


def test_measures_once_per_world_then_resumes_and_summarises(monkeypatch, tmp_path) -> None:
    calls = []

    def fake(loaded, world_seed: int, ci: bool) -> dict[str, float]:
        calls.append((world_seed, ci))
        return {"mIoU": 0.5 + 0.1 * world_seed}

    monkeypatch.setitem(targets.MEASUREMENTS, "fake", fake)
    table = targets.measure_all(None, ["fake"], [0, 2], "ci", tmp_path)
    assert calls == [(0, True), (2, True)] and table == {"mIoU": {0: 0.5, 2: 0.7}}
    assert json.loads((tmp_path / "ci-fake-2.json").read_text())["metrics"] == {"mIoU": 0.7}
    assert targets.measure_all(None, ["fake"], [0, 2], "ci", tmp_path) == table and len(calls) == 2  # resumed
    lines = targets.summary(table).splitlines()
    assert lines[0] == "| metric | mean ± sd | min | world 0 | world 2 |"
    assert lines[2] == "| mIoU | 0.600 ± 0.100 | 0.500 | 0.500 | 0.700 |"


def test_negative_world_seed_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        targets.main(["--world-seeds", "-1", "--measure", "clip"])
    assert exit_info.value.code == 2 and "--world-seeds: must be non-negative, got -1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module", ["bank_quality", "car_quality", "reco_ablation", "reco_plus_quality", "zegclip_quality"]
)
def test_every_toy_script_refuses_a_negative_world_seed(module: str, capsys) -> None:
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"pipeline.toy.{module}").main(["--world-seed", "-1"])
    assert exit_info.value.code == 2 and "--world-seed: must be non-negative, got -1" in capsys.readouterr().err


def test_command_line_reaches_every_option(monkeypatch, tmp_path, capsys) -> None:
    calls = []

    def fake(loaded, world_seed: int, ci: bool) -> dict[str, float]:
        calls.append((loaded.ref.name, world_seed, ci))
        return {"mIoU": 0.5}

    monkeypatch.setitem(targets.MEASUREMENTS, "fake", fake)
    argv = ["--world-seeds", "1", "2", "--measure", "fake", "--protocol", "ci", "--model", "toy", "--threads", "1"]
    assert targets.main([*argv, "--out", str(tmp_path)]) == 0
    assert calls == [("toy", 1, True), ("toy", 2, True)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ci-fake-1.json", "ci-fake-2.json"]
    assert "| mIoU | 0.500 ± 0.000 | 0.500 | 0.500 | 0.500 |" in capsys.readouterr().out


def test_world_seed_flag_draws_another_world(tmp_path) -> None:
    from pipeline.toy import bank_quality

    runs = {}
    for seed in (0, 1):
        out = tmp_path / f"{seed}.json"
        argv = ["--pool-size", "60", "--bench-size", "4", "--k", "3", "--threads", "1", "--json", str(out)]
        assert bank_quality.main([*argv, "--world-seed", str(seed)]) == 0
        runs[seed] = json.loads(out.read_text())
    assert [runs[s]["settings"]["world_seed"] for s in (0, 1)] == [0, 1]
    assert runs[0]["iou"] != runs[1]["iou"]  # other pool and benchmark scenes
