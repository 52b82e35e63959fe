"""`coarchive run` input checks: the example config loads; bad configs and a locked root fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.app.cli import main
from pipeline.app.nightly.config import load_config
from pipeline.app.nightly.faults import FAULT_ENV, maybe_fault
from pipeline.app.nightly.lock import root_lock

EXAMPLE = Path(__file__).resolve().parents[4] / "pipeline" / "app" / "nightly" / "nightly.example.yaml"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A data root with a registry and a benchmark folder: what the example config points at."""
    (tmp_path / "concepts.yaml").write_text("concepts: [circle]\n")
    (tmp_path / "benchmark").mkdir()
    return tmp_path


def test_example_config_loads_and_help_names_config(root: Path, capsys: pytest.CaptureFixture) -> None:
    config = load_config(EXAMPLE, root=root)
    assert config.root == str(root.resolve()) and config.ingest is not None and config.evaluate is not None
    assert config.archives.k == 50 and config.executor.kind == "local"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0 and "--config" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "config file not found"),
        ("root: .\narchives: {k: [1\n", "not valid YAML (line 3)"),
        ("- a list\n", "expected a mapping"),
        ("archives: {k: 3}\n", "missing key 'root'"),
        (
            "root: .\nmodel: toy\nembed: {bach_size: 3}\n",
            "unknown key 'embed.bach_size'; embed takes batch_size, decode_threads",
        ),
        ("root: .\nmodel: toy\nfoo: 1\n", "unknown key 'foo'"),
        ("root: .\nmodel: toy\narchives: {k: many}\n", "archives.k must be a valid integer, got 'many'"),
        ("root: .\nmodel: toy\narchives: 3\n", "archives must be a mapping"),
        ("root: .\nmodel: toy\nevaluate: {data_root: benchmark}\n", "missing key 'evaluate.dataset'"),
        ("root: ./nowhere\nmodel: toy\n", "data root not found"),
        ("root: .\nmodel: toy\narchives: {registry: none.yaml}\n", "concept registry not found"),
        ("root: .\nmodel: toy\nevaluate: {dataset: toy, data_root: nope}\n", "benchmark folder not found"),
        ("root: .\nmodel: toy\nexecutor: {kind: spark}\n", "executor.kind must be 'local' or 'dask', got 'spark'"),
        ("root: .\n", "missing key 'model'"),  # no silent toy model
        ("root: .\nmodel: toy\nembed: {batch_size: '3'}\n", "embed.batch_size must be a valid integer, got '3'"),
        ("root: .\nmodel: toy\narchives: {images: 1}\n", "archives.images must be a valid boolean, got 1"),
        ("root: .\nmodel: toy\nindex: {coarse: tree}\n", "index.coarse must be 'auto', 'flat' or 'hnsw', got 'tree'"),
        ("root: .\nmodel: toy\nindex: {rerank: -1}\n", "index.rerank must be an integer >= 0 or null, got -1"),
        ("root: .\nmodel: toy\nindex: {device: tpu}\n", "index.device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    root: Path, text: str | None, message: str, capsys: pytest.CaptureFixture
) -> None:
    config = root / "nightly.yaml"
    if text is not None:
        config.write_text(text)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("coarchive: error: ") and message in err, err


def test_bad_run_name_is_refused(root: Path, capsys: pytest.CaptureFixture) -> None:
    (root / "nightly.yaml").write_text("root: .\nmodel: toy\n")
    assert main(["run", "--config", str(root / "nightly.yaml"), "--run", "../elsewhere"]) == 2
    assert "bad run name" in capsys.readouterr().err


def test_locked_root_is_refused_in_one_line(root: Path, capsys: pytest.CaptureFixture) -> None:
    (root / "nightly.yaml").write_text(yaml.safe_dump({"root": ".", "model": "toy"}))
    with root_lock(root, "2026-11-21", "embed"):
        assert main(["run", "--config", str(root / "nightly.yaml"), "--run", "2026-11-22"]) == 75
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is locked by pid" in err and "run 2026-11-21" in err
    assert not (root / "runs" / "2026-11-22").exists()


def test_fault_hook_parses_and_fires_only_where_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, "banks:raise:2")
    maybe_fault("banks", "raise", 1)
    maybe_fault("index", "raise", 2)
    with pytest.raises(RuntimeError, match="injected failure in stage banks"):
        maybe_fault("banks", "raise", 2)
    monkeypatch.setenv(FAULT_ENV, "banks:explode")
    with pytest.raises(ValueError, match="bad entry"):
        maybe_fault("banks", "raise", 1)
