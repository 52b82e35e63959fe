"""A nightly index stage interrupted while it retrains on drift resumes as the uninterrupted one: it records the
drift as the reason (not "resumed a retrain") and writes the same trained index and blocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.app.nightly.config import load_config
from pipeline.app.nightly.run import run_nightly
from tests.pipeline.app.nightly.world import arrive, make_root

D1, D2 = "2026-11-21", "2026-11-22"
STAGES = ["ingest", "embed", "index"]


def _index(root: Path) -> tuple[dict, dict[str, bytes]]:
    folder = root / "index" / "toy" / "v1"
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in [folder / "trained.index"]}
    files.update({p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("blocks/*.index"))})
    return json.loads((folder / "index.json").read_text()), files


def _run(root: Path, run: str) -> None:
    run_nightly(load_config(root / "nightly.yaml"), run, stages=STAGES, progress=False, echo=lambda _: None)


def test_a_retrain_interrupted_mid_way_resumes_with_its_reason_and_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.pool.index

    base = tmp_path / "base"
    config = make_root(base)
    settings = yaml.safe_load(config.read_text())
    settings["index"] = {"max_imbalance": 1.0}  # any imbalance is drift: day 2 retrains
    config.write_text(yaml.safe_dump(settings))
    _run(base, D1)
    arrive(base)
    clean, faulty = tmp_path / "clean", tmp_path / "faulty"
    shutil.copytree(base, clean)
    shutil.copytree(base, faulty)

    _run(clean, D2)
    clean_info, clean_files = _index(clean)
    assert clean_info["retrained_because"].startswith("inverted-list imbalance")

    # the retrain dies after training its new index, before adding the blocks (the incremental add came first)
    calls, real = [], pipeline.pool.index.run_stage

    def dies_in_the_retrain(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed during the retrain")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.pool.index, "run_stage", dies_in_the_retrain)
    with pytest.raises(KeyboardInterrupt):
        _run(faulty, D2)
    folder = faulty / "index" / "toy" / "v1"
    assert not (folder / "index.json").exists() and (folder / "trained.index").is_file()
    monkeypatch.setattr(pipeline.pool.index, "run_stage", real)

    _run(faulty, D2)
    info, files = _index(faulty)
    assert info["retrained_because"] == clean_info["retrained_because"]
    assert files.keys() == clean_files.keys() and all(files[k] == clean_files[k] for k in files)
    assert {k: v for k, v in info.items() if k != "seconds"} == {k: v for k, v in clean_info.items() if k != "seconds"}
    stage = json.loads((faulty / "runs" / D2 / "manifest.json").read_text())["stages"]["index"]
    assert (
        stage["attempts"] == 2 and stage["counts"]["retrained"] == 1 and "inverted-list imbalance" in stage["message"]
    )
    assert not list((faulty / "runs" / D2).glob("*.trained.index"))  # the kept copy is dropped once the stage is done
