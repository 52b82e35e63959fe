"""The nightly DAG: its folder imports cleanly without heavy modules; dag.test() runs it end to end on a toy pool
(a new URL list ingested, a failure injected into one task and retried without redoing the finished ones), and a
second logical date with no new data is a no-op. Airflow runs in a subprocess with its own AIRFLOW_HOME (sqlite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tests.pipeline.app.nightly.world import make_root

REPO = Path(__file__).resolve().parents[2]
D0, D1, D2 = "2026-11-20", "2026-11-21", "2026-11-22"
HEAVY = ("torch", "faiss", "open_clip", "pipeline.app.nightly.run", "pipeline.pool.embed", "segment.bank")


def _airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "COARCHIVE_NIGHTLY"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        COARCHIVE_DAG_RETRY_DELAY_S="1",
        PYTHONPATH=str(REPO),
    )
    return env


def _result(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-3000:])
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_dag_folder_imports_without_errors_or_heavy_modules(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag()\n"
        "dag = bag.dags.get('coarchive_nightly')\n"
        "print('RESULT ' + json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},\n"
        "    'tasks': [t.task_id for t in dag.tasks] if dag else None,\n"
        "    'retries': sorted({t.retries for t in dag.tasks}) if dag else None,\n"
        "    'upstream': {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else None,\n"
        "    'params': sorted(dag.params) if dag else None, 'max_active_runs': dag.max_active_runs if dag else None,\n"
        "    'paused': dag.is_paused_upon_creation if dag else None,\n"
        "    'retry_delay': sorted({t.retry_delay.total_seconds() for t in dag.tasks}) if dag else None,\n"
        f"    'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    env = _airflow_env(tmp_path / "airflow")
    result = _result(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300))
    assert result["errors"] == {} and result["heavy"] == []
    stages = ["ingest", "embed", "index", "archives", "banks", "evaluate", "publish"]
    from pipeline.app.nightly.state import STAGES

    assert result["tasks"] == stages == list(STAGES)
    assert result["upstream"] == {s: stages[i - 1 : i] for i, s in enumerate(stages)}
    assert result["retries"] == [2] and result["max_active_runs"] == 1
    assert result["params"] == ["config", "root", "scheduler"]
    assert result["paused"] is True  # unpausing is a deliberate step, after the Variable is set
    assert result["retry_delay"] == [1.0]  # COARCHIVE_DAG_RETRY_DELAY_S, read when the file is parsed


def _url_list(root: Path, shard: Path, count: int) -> None:
    """incoming/day1.parquet: file:// URLs of `count` images of a held-back toy shard (a new URL list arriving)."""
    site = root / "site"
    site.mkdir()
    rows = []
    with tarfile.open(shard) as tar:
        for member in sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)[:count]:
            path = site / member.name
            path.write_bytes(tar.extractfile(member).read())
            rows.append({"url": path.resolve().as_uri(), "caption": "a toy scene"})
    (root / "incoming").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "incoming" / "day1.parquet")


def test_dag_runs_end_to_end_retries_one_task_and_noops_without_new_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = make_root(root, pool_size=200, late=(1,))
    _url_list(root, root / "late" / "00001.tar", 40)
    settings = yaml.safe_load(config.read_text())
    settings["ingest"] = {"urls": "incoming/*.parquet", "shard_size": 100, "threads": 4, "timeout": 5}
    config.write_text(yaml.safe_dump(settings))

    env = _airflow_env(tmp_path / "airflow")
    cmd = [sys.executable, str(REPO / "tests" / "dags" / "dag_child.py"), str(root), str(config), D0, D1, D2]
    proc = subprocess.run([*cmd, "archives:raise:1"], env=env, capture_output=True, text=True, timeout=600)
    result = _result(proc)
    assert result["import_errors"] == {} and result["dags"] == ["coarchive_nightly"]

    # no conf and no Variable (an unpaused DAG's scheduled run before the Variable is set): the first task fails at
    # once, not retried, saying where a scheduled run finds its config; nothing is written to the data root
    unconfigured = result["unconfigured"]
    assert unconfigured["state"] == "failed"
    assert unconfigured["tasks"]["ingest"] == {"state": "failed", "try_number": 1}
    assert "Airflow Variable 'coarchive_config'" in proc.stdout + proc.stderr
    assert not (root / "runs" / D0).exists()

    # first logical date: success, the failed task retried once, every other task ran once
    first = result["first"]
    assert first["state"] == "success", first
    tries = {task: info["try_number"] for task, info in first["tasks"].items()}
    assert tries == {"ingest": 1, "embed": 1, "index": 1, "archives": 2, "banks": 1, "evaluate": 1, "publish": 1}
    manifest = json.loads((root / "runs" / D1 / "manifest.json").read_text())
    stages = manifest["stages"]
    assert manifest["status"] == "done" and manifest["failures"] == {}
    assert {s: e["attempts"] for s, e in stages.items()} == tries
    assert stages["archives"]["started_at"] > stages["index"]["finished_at"]
    (error,) = stages["archives"]["errors"]  # attempt 1's error outlives the successful retry
    assert error["attempt"] == 1 and error["error"].startswith("InjectedFaultError: injected failure in stage archives")
    assert stages["archives"]["error"] is None and stages["index"]["errors"] == []
    assert stages["ingest"]["counts"] == {"lists": 1, "shards": 1, "images": 40, "failed": 0}
    assert stages["embed"]["counts"]["shards"] == 2 and stages["index"]["counts"]["vectors"] == 140
    assert sorted(p.name for p in (root / "pool").glob("*.tar")) == ["00000.tar", "00001.tar"]
    assert json.loads((root / "ingest" / "incoming_day1.parquet.json").read_text())["shards"] == [1]
    latest = json.loads((root / "runs" / "latest.json").read_text())
    assert latest["run"] == D1 and latest["bank"] == f"banks/toy/{D1}" and latest["miou"] > 0.1

    # second logical date, no conf (as a scheduled run): its config from the Variable; no new data, so every task
    # succeeds at once and changes nothing
    second = result["second"]
    assert second["state"] == "success" and {t["try_number"] for t in second["tasks"].values()} == {1}
    noop = json.loads((root / "runs" / D2 / "manifest.json").read_text())
    assert noop["status"] == "noop" and noop["baseline"] == D1 and noop["config"]["source"] == str(config.resolve())
    assert json.loads((root / "runs" / "latest.json").read_text()) == latest
    assert not (root / "archives" / "toy" / D2).exists()
