"""What one Airflow task of the nightly DAG does: resolve root, config and scheduler at run time, run one stage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

VARIABLES = {"root": "coarchive_root", "config": "coarchive_config", "scheduler": "coarchive_scheduler"}


def _airflow_variable(name: str) -> str | None:
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def resolve_settings(
    params: Mapping[str, Any],
    variable: Callable[[str], str | None] = _airflow_variable,
    run_type: str | None = None,
) -> dict:
    """root, config and scheduler: the DAG run's params first, then the Airflow Variables coarchive_root, ...

    ValueError when no config file is named anywhere, saying where a run of `run_type` (scheduled runs have no
    conf) must find it.
    """
    out = {}
    for key, name in VARIABLES.items():
        value = params.get(key) or variable(name)
        out[key] = str(value) if value else None
    if not out["config"]:
        name = VARIABLES["config"]
        kind = f"this {run_type} run" if run_type else "this run"
        raise ValueError(
            f"no nightly config for {kind}: set the Airflow Variable {name!r} (airflow variables set {name} "
            f"/path/to/nightly.yaml, or AIRFLOW_VAR_{name.upper()} in the workers' environment); the DAG param "
            "'config' reaches only runs triggered with --conf, never scheduled ones"
        )
    return out


def run_partition(context: Mapping[str, Any]) -> str:
    """The run partition of a DAG run: its logical date (its run_after date for runs without one), as YYYY-MM-DD."""
    when = context.get("logical_date")
    if when is None:
        when = context["dag_run"].run_after
    return when.date().isoformat() if isinstance(when, dt.datetime) else str(when)[:10]


def _run_type(context: Mapping[str, Any]) -> str | None:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return getattr(run_type, "value", run_type)


def run_dag_task(stage: str, context: Mapping[str, Any]) -> dict:
    """Run stage `stage` of the DAG run's partition; return a small summary for XCom.

    A missing or bad config fails the task at once, without retries (AirflowFailException): retrying cannot fix it.
    """
    from pipeline.core.blas_policy import name_blas_kernel

    name_blas_kernel()  # its own task process: faiss is not loaded yet
    if stage == "embed":  # nor is torch
        from pipeline.core.openmp_policy import sleep_when_idle

        sleep_when_idle()
    from pipeline.app.nightly.config import load_config
    from pipeline.app.nightly.run import run_nightly

    try:
        settings = resolve_settings(context.get("params") or {}, run_type=_run_type(context))
        config = load_config(settings["config"], root=settings["root"])
    except (ValueError, FileNotFoundError) as error:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{error} (not retried: fix it, then clear the task)") from None
    run = run_partition(context)
    report = run_nightly(config, run, stages=[stage], scheduler=settings["scheduler"], progress=False)
    return {
        "run": run,
        "stage": stage,
        "outcome": report.outcomes[stage],
        "message": report.messages[stage],
        "already_done": stage in report.already_done,
    }
