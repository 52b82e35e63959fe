"""Run in a fresh process by test_nightly_dag.py (AIRFLOW_HOME and the DAG folder set in its environment): create
the sqlite database, import the DAG folder, dag.test() two logical dates (the first with an injected fault), print
the outcome as JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

FAULT_ENV = "COARCHIVE_NIGHTLY_FAULT"


def _task_instances(dag_run) -> dict:
    return {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in dag_run.get_task_instances()}


def main(root: str, config: str, first: str, second: str, fault: str) -> None:
    """Migrate the database, import the DAG folder, dag.test() `first` (with `fault` injected) then `second`, print
    JSON to stdout."""
    from airflow.utils.db import initdb

    initdb()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
    dag = bag.dags["coarchive_nightly"]
    conf = {"root": root, "config": config}
    for key, day in (("first", first), ("second", second)):
        if key == "first":
            os.environ[FAULT_ENV] = fault
        else:
            os.environ.pop(FAULT_ENV, None)
        when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
        dag_run = dag.test(logical_date=when, run_conf=conf)
        out[key] = {"state": str(dag_run.state), "tasks": _task_instances(dag_run)}
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
