"""Run in a fresh process by test_nightly_dag.py (AIRFLOW_HOME and the DAG folder set in its environment): create
the sqlite database, import the DAG folder, dag.test() a run with no config anywhere, then two logical dates (the
first with conf and an injected fault, the second with no conf: its config from the Airflow Variable, as a scheduled
run finds it), print the outcome as JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

FAULT_ENV = "COARCHIVE_NIGHTLY_FAULT"
CONFIG_VARIABLE_ENV = "AIRFLOW_VAR_COARCHIVE_CONFIG"  # the Variable coarchive_config, from the environment


def _task_instances(dag_run) -> dict:
    return {ti.task_id: {"state": str(ti.state), "try_number": ti.try_number} for ti in dag_run.get_task_instances()}


def main(root: str, config: str, unconfigured: str, first: str, second: str, fault: str) -> None:
    """Migrate the database, import the DAG folder, dag.test() `unconfigured` (no conf, no Variable), `first` (conf
    naming root and config, `fault` injected), then `second` (no conf, the Variable set); print JSON to stdout."""
    from airflow.utils.db import initdb

    initdb()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags)}
    dag = bag.dags["coarchive_nightly"]
    runs = (
        ("unconfigured", unconfigured, None, {}),
        ("first", first, {"root": root, "config": config}, {FAULT_ENV: fault}),
        ("second", second, None, {CONFIG_VARIABLE_ENV: config}),
    )
    for key, day, conf, env in runs:
        for name in (FAULT_ENV, CONFIG_VARIABLE_ENV):
            os.environ.pop(name, None)
        os.environ.update(env)
        when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
        dag_run = dag.test(logical_date=when, run_conf=conf)
        out[key] = {"state": str(dag_run.state), "tasks": _task_instances(dag_run)}
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:7])
