"""Airflow 3 DAG `coarchive_nightly`: the stages of `coarchive run` as separate tasks with retries, one run partition
per logical date. Schedule and wiring only: each task is one call into pipeline.app.nightly, imported when it runs.

Read when a task runs: the DAG params `root`, `config`, `scheduler` (only runs triggered with --conf have them),
falling back to the Airflow Variables coarchive_root, coarchive_config, coarchive_scheduler. A scheduled run has no
conf, so set the Variable coarchive_config before unpausing; without a config the first task fails at once, not
retried. Read when the file is parsed, so set them in the DAG processor's environment: COARCHIVE_GPU_QUEUE (embed,
banks and evaluate go to the workers of that queue) and COARCHIVE_DAG_RETRY_DELAY_S (retry delay, default 300 s).
The DAG starts paused. Guide: docs/deploy-airflow.md.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import Param, chain, dag, task

STAGES = ("ingest", "embed", "index", "archives", "banks", "evaluate", "publish")  # pipeline.app.nightly.state.STAGES
GPU_STAGES = ("embed", "banks", "evaluate")
GPU_QUEUE = os.environ.get("COARCHIVE_GPU_QUEUE") or None
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("COARCHIVE_DAG_RETRY_DELAY_S", "300")))


def _stage_task(stage: str):
    """The task running one stage; GPU stages go to COARCHIVE_GPU_QUEUE when it is set."""
    options = {"queue": GPU_QUEUE} if GPU_QUEUE and stage in GPU_STAGES else {}

    @task(task_id=stage, **options)
    def run_stage(**context) -> dict:
        """Run this stage of the DAG run's partition (its logical date) through pipeline.app.nightly."""
        from pipeline.app.nightly.dag_tasks import run_dag_task

        return run_dag_task(stage, context)

    return run_stage()


@dag(
    dag_id="coarchive_nightly",
    description="coarchive nightly run: ingest, embed, index, archives, banks, evaluate, publish",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    is_paused_upon_creation=True,  # whatever [core] dags_are_paused_at_creation says: set the Variable, then unpause
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True},
    params={
        "root": Param(None, type=["null", "string"], description="data root (default: Variable coarchive_root)"),
        "config": Param(None, type=["null", "string"], description="nightly YAML (default: coarchive_config)"),
        "scheduler": Param(None, type=["null", "string"], description="Dask scheduler address, tcp://host:8786"),
    },
    tags=["coarchive"],
    doc_md=__doc__,
)
def coarchive_nightly():
    """One task per stage, in run order."""
    chain(*(_stage_task(stage) for stage in STAGES))


coarchive_nightly()
