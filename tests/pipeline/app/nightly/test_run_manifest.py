"""The run manifest keeps every failed attempt of a stage: raised errors and attempts whose process died."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.app.nightly.run_manifest import (
    INTERRUPTED,
    begin_stage,
    end_stage,
    fail_stage,
    manifest_path,
    read_manifest,
)
from pipeline.app.nightly.state import write_json

RUN = "2026-11-22"


def test_every_failed_attempt_stays_in_the_manifest_after_a_successful_retry(tmp_path: Path) -> None:
    write_json(manifest_path(tmp_path, RUN), {"run": RUN, "stages": {}})
    assert begin_stage(tmp_path, RUN, "index") == 1
    fail_stage(tmp_path, RUN, "index", OSError("disk full"))
    assert begin_stage(tmp_path, RUN, "index") == 2  # attempt 2 is SIGKILLed: it stays 'running'
    time.sleep(0.002)  # times are kept to the millisecond: attempt 3 starts in a later one
    assert begin_stage(tmp_path, RUN, "index") == 3
    end_stage(tmp_path, RUN, "index", {"outcome": "ran"})

    manifest = read_manifest(tmp_path, RUN)
    entry = manifest["stages"]["index"]
    assert entry["status"] == "done" and entry["attempts"] == 3 and entry["error"] is None
    assert manifest["failures"] == {}
    assert [(e["attempt"], e["error"]) for e in entry["errors"]] == [(1, "OSError: disk full"), (2, INTERRUPTED)]
    first, killed = entry["errors"]
    assert first["started_at"] <= first["failed_at"] <= killed["started_at"] < entry["started_at"]
    assert killed["failed_at"] is None  # nobody saw it die


def test_a_stage_that_never_failed_has_no_errors(tmp_path: Path) -> None:
    write_json(manifest_path(tmp_path, RUN), {"run": RUN, "stages": {}})
    begin_stage(tmp_path, RUN, "embed")
    end_stage(tmp_path, RUN, "embed", {"outcome": "ran"})
    assert read_manifest(tmp_path, RUN)["stages"]["embed"]["errors"] == []
