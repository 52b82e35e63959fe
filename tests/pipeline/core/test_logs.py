"""Diagnostics through logging: --quiet/--verbose anywhere on the line, notes vs results, and a log file per task."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.cli import main
from pipeline.core.executors import DaskExecutor, LocalExecutor
from pipeline.core.stage import Stage, run_stage


class _Flaky(Stage):
    """Task 'b' fails on its first attempt only; every task logs a note."""

    name = "flaky"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def plan(self) -> list[str]:
        return ["a", "b"]

    def is_done(self, task: str) -> bool:
        return False

    def run_task(self, task: str) -> dict:
        from pipeline.core.logs import get_logger

        get_logger("tests.flaky").info("working on %s", task)
        if task == "b" and not Path(self.marker).exists():
            Path(self.marker).touch()
            raise RuntimeError("first attempt of b fails")
        return {"n": 1}


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_each_task_logs_to_its_own_file_with_every_attempt(tmp_path: Path, executor: str) -> None:
    runner = LocalExecutor() if executor == "local" else DaskExecutor(workers=1)
    try:
        report = run_stage(_Flaky(str(tmp_path / "failed-once")), runner, progress=False, log_dir=tmp_path / "logs")
    finally:
        runner.close()
    assert sorted(report.done) == ["a", "b"] and not report.failed
    a, b = (tmp_path / "logs" / "a.log").read_text(), (tmp_path / "logs" / "b.log").read_text()
    assert "working on a" in a and "flaky task a done" in a and "working on b" not in a
    assert b.count("working on b") == 2 and "RuntimeError: first attempt of b fails" in b  # the traceback is kept
    assert "flaky task b done" in b


def test_quiet_and_verbose_are_taken_after_the_subcommand(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--quiet", "concepts", "list", "--help"], ["concepts", "list", "--quiet", "--help"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    help_text = capsys.readouterr().out
    assert "--quiet" in help_text and "--verbose" in help_text


def test_notes_to_stderr_results_to_stdout_verbose_adds_debug(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pipeline.toy.export import generate_toy_world
    from pipeline.toy.world import WorldSpec

    sizes = {"pool_size": 40, "shard_size": 20, "bench_size": 1}
    generate_toy_world(tmp_path / "w", WorldSpec(), seed=3, workers=1, progress=False, **sizes)
    root = tmp_path / "w" / "root"
    pool = tmp_path / "w" / "pool"
    assert main(["embed", "--pool", str(pool), "--root", str(root), "--model", "toy", "--run", "r1", "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert "embedded 40 of 40" in quiet.out and "model toy" in quiet.err and "model toy" not in quiet.out
    assert sorted(p.name for p in (root / "runs" / "r1" / "logs" / "embed").iterdir()) == ["00000.log", "00001.log"]
    assert main(["index", "--root", str(root), "--verbose"]) == 0
    loud = capsys.readouterr().err
    assert "coarchive index: model toy (found in" in loud and "DEBUG" in loud  # notes, then debug lines with levels
