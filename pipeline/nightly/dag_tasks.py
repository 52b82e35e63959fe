"""What one Airflow task of the nightly DAG does: resolve root, config and scheduler at run time, run one stage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

VARIABLES = {"root": "coarchive_root", "config": "coarchive_config", "scheduler": "coarchive_scheduler"}


def _airflow_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def resolve_settings(params: Mapping[str, Any], variable: Callable[[str], str | None] = _airflow_variable) -> dict:
    """root, config and scheduler: the DAG run's params first, then the Airflow Variables coarchive_root, ...

    ValueError when no config file is named anywhere.
    """
    out = {}
    for key, name in VARIABLES.items():
        value = params.get(key) or variable(name)
        out[key] = str(value) if value else None
    if not out["config"]:
        name = VARIABLES["config"]
        raise ValueError(f"no nightly config: set the DAG param 'config' or the Airflow Variable {name!r}")
    return out


def run_partition(context: Mapping[str, Any]) -> str:
    """The run partition of a DAG run: its logical date (its run_after date for runs without one), as YYYY-MM-DD."""
    when = context.get("logical_date")
    if when is None:
        when = context["dag_run"].run_after
    return when.date().isoformat() if isinstance(when, dt.datetime) else str(when)[:10]


def run_dag_task(stage: str, context: Mapping[str, Any]) -> dict:
    """Run stage `stage` of the DAG run's partition; return a small summary for XCom."""
    from pipeline.nightly.config import load_config
    from pipeline.nightly.run import run_nightly

    settings = resolve_settings(context.get("params") or {})
    config = load_config(settings["config"], root=settings["root"])
    run = run_partition(context)
    report = run_nightly(config, run, stages=[stage], scheduler=settings["scheduler"], progress=False)
    return {
        "run": run,
        "stage": stage,
        "outcome": report.outcomes[stage],
        "message": report.messages[stage],
        "already_done": stage in report.already_done,
    }
