"""docs/operations/deploy-airflow.md followed as written: its bash blocks (all but those marked as not run) run in
order in a scratch AIRFLOW_HOME (sqlite, no scheduler) against a toy data root; then the Airflow database, the runs,
the pointer and the manifests are checked."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "operations" / "deploy-airflow.md"
BLOCK = re.compile(r"(<!-- not run by the test: [^>]*-->\n)?```bash\n(.*?)```", re.S)
D_FIRST, D_BACKFILL = "2026-11-21", "2026-11-19"


def guide_blocks() -> tuple[list[str], list[str]]:
    """The guide's bash blocks in order: those the test runs, and those marked as not run."""
    run, skipped = [], []
    for marker, body in BLOCK.findall(GUIDE.read_text()):
        (skipped if marker else run).append(body)
    return run, skipped


def test_the_guide_runs_every_step_but_site_paths_install_and_the_scheduler_backfill() -> None:
    run, skipped = guide_blocks()
    assert len(skipped) == 3
    assert "export AIRFLOW_HOME" in skipped[0] and "pip install" in skipped[1] and "backfill create" in skipped[2]
    steps = "\n".join(run)
    for needed in (
        "airflow db migrate",
        'cp "$COARCHIVE_SRC/dags/coarchive_nightly.py" "$AIRFLOW_HOME/dags/"',
        "export COARCHIVE_DAG_RETRY_DELAY_S=",
        "coarchive concepts add",
        "airflow variables set coarchive_config",
        "airflow dags test coarchive_nightly",
        "airflow dags unpause coarchive_nightly",
    ):
        assert needed in steps, needed


def _db(home: Path, query: str) -> list[tuple]:
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute(query).fetchall()


def test_deploy_guide_end_to_end(tmp_path: Path) -> None:
    run, _ = guide_blocks()
    home, data = tmp_path / "airflow", tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COARCHIVE"))}
    env.update(
        AIRFLOW_HOME=str(home),
        COARCHIVE_SRC=str(REPO),
        COARCHIVE_DATA=str(data),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    steps = [f'echo "STEP {i} at $SECONDS s" >&2\n{block}' for i, block in enumerate(run)]
    script = "set -euo pipefail\n" + "\n".join(steps)
    proc = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    print("\n".join(line for line in proc.stderr.splitlines() if line.startswith("STEP ")))  # seen with -s

    # step 2 and 9: the DAG file parsed from the DAG folder, unpaused; step 7: the Variable
    assert (home / "dags" / "coarchive_nightly.py").read_bytes() == (
        REPO / "dags" / "coarchive_nightly.py"
    ).read_bytes()
    assert _db(home, "SELECT is_paused FROM dag WHERE dag_id = 'coarchive_nightly'") == [(0,)]
    assert _db(home, "SELECT count(*) FROM variable WHERE key = 'coarchive_config'") == [(1,)]  # (encrypted)
    assert _db(home, "SELECT count(*) FROM import_error") == [(0,)]

    # step 8: the date run by hand with no conf found its config through the Variable and ran every stage once
    first = json.loads((data / "runs" / D_FIRST / "manifest.json").read_text())
    assert first["status"] == "done" and first["baseline"] is None
    assert first["config"]["source"] == str((data / "nightly.yaml").resolve())
    assert {s: (e["attempts"], e["errors"]) for s, e in first["stages"].items()} == {
        s: (1, []) for s in ("ingest", "embed", "index", "archives", "banks", "evaluate", "publish")
    }
    assert first["stages"]["evaluate"]["outcome"] == "ran" and first["stages"]["evaluate"]["counts"]["images"] == 8

    # step 10: the backfill of an earlier date ran in its own partition and left latest alone
    backfill = json.loads((data / "runs" / D_BACKFILL / "manifest.json").read_text())
    assert backfill["baseline"] is None and backfill["stages"]["publish"]["outcome"] == "not published"
    assert (data / "banks" / "toy" / D_BACKFILL / "bank.safetensors").is_file()
    assert json.loads((data / "runs" / "latest.json").read_text())["run"] == D_FIRST
    assert f"runs/latest.json stays {D_FIRST}" in proc.stdout

    # step 11: the manifest summary printed
    assert f"{D_BACKFILL} done baseline: None" in proc.stdout
