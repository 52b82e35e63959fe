"""Run partitions follow their dates, not the order they were started in: a run's baseline is the newest finished
partition before its date, and a backfill never moves runs/latest.json backwards."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pipeline.app.cli import main
from pipeline.app.nightly.partitions import baseline_for, newer_published
from pipeline.app.nightly.state import marker_path, runs_dir, write_json
from tests.pipeline.app.nightly.world import make_root


def _finish(root: Path, run: str, publish: bool = True) -> None:
    """A partition whose publish stage finished (and, with `publish`, that runs/latest.json names)."""
    write_json(marker_path(root, run, "publish"), {"stage": "publish", "run": run})
    if publish:
        write_json(runs_dir(root) / "latest.json", {"run": run})


def test_baseline_is_the_newest_finished_partition_before_the_date(tmp_path: Path) -> None:
    assert baseline_for(tmp_path, "2026-11-22") is None
    _finish(tmp_path, "2026-11-28")
    _finish(tmp_path, "2026-11-21", publish=False)
    (runs_dir(tmp_path) / "2026-11-25" / "stages").mkdir(parents=True)  # started, never finished
    assert baseline_for(tmp_path, "2026-11-20") is None
    assert baseline_for(tmp_path, "2026-11-26") == "2026-11-21"
    assert baseline_for(tmp_path, "2026-11-29") == "2026-11-28"
    assert baseline_for(tmp_path, "2026-11-28") == "2026-11-21"  # a rerun of a date never takes itself
    assert newer_published(tmp_path, "2026-11-26") == "2026-11-28"
    assert newer_published(tmp_path, "2026-11-28") is None and newer_published(tmp_path, "2026-11-29") is None


def test_runs_not_named_by_date_keep_the_started_order(tmp_path: Path) -> None:
    _finish(tmp_path, "2026-11-28")
    assert baseline_for(tmp_path, "smoke") == "2026-11-28" and newer_published(tmp_path, "smoke") is None
    _finish(tmp_path, "smoke")
    assert baseline_for(tmp_path, "2026-11-29") == "2026-11-28"  # dated runs compare with dated runs
    assert newer_published(tmp_path, "2026-11-20") is None  # latest names no date: a dated run replaces it


def _run(config: Path, run: str) -> int:
    return main(["--quiet", "run", "--config", str(config), "--run", run])


def _manifest(root: Path, run: str) -> dict:
    return json.loads((root / "runs" / run / "manifest.json").read_text())


def _latest(root: Path) -> str:
    return json.loads((root / "runs" / "latest.json").read_text())["run"]


def test_runs_started_out_of_date_order_take_date_order_baselines_and_never_move_latest_back(
    tmp_path: Path, capsys
) -> None:
    root = tmp_path / "root"
    config = make_root(root, late=())
    settings = yaml.safe_load(config.read_text())
    del settings["evaluate"]  # not needed here; keeps the test quick
    config.write_text(yaml.safe_dump(settings))

    assert _run(config, "2026-11-28") == 0 and _latest(root) == "2026-11-28"

    # a backfill of an earlier date: no baseline (nothing finished before it), built in full, latest stays
    assert _run(config, "2026-11-21") == 0
    backfill = _manifest(root, "2026-11-21")
    assert backfill["baseline"] is None and backfill["status"] == "done"
    assert backfill["stages"]["archives"]["outcome"] == "ran" and backfill["stages"]["banks"]["outcome"] == "ran"
    assert backfill["stages"]["publish"]["outcome"] == "not published"
    assert "runs/latest.json stays 2026-11-28" in capsys.readouterr().out
    assert _latest(root) == "2026-11-28" and (root / "banks" / "toy" / "2026-11-21" / "bank.safetensors").is_file()

    # a date between: compares with 2026-11-21 (the newest before it), not with the newer 2026-11-28
    assert _run(config, "2026-11-26") == 0
    between = _manifest(root, "2026-11-26")
    assert between["baseline"] == "2026-11-21" and between["status"] == "noop"
    assert "no new data since 2026-11-21; nothing to do (latest stays 2026-11-28)" in capsys.readouterr().out
    assert _latest(root) == "2026-11-28"

    # the next night compares with 2026-11-28
    assert _run(config, "2026-11-29") == 0
    assert _manifest(root, "2026-11-29")["baseline"] == "2026-11-28" and _latest(root) == "2026-11-28"
