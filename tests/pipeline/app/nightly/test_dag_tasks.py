"""What one DAG task does before its stage runs: every task names faiss's OpenBLAS kernel, and the embed task's
processes let idle OpenMP threads sleep."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from pipeline.app.nightly import config as nightly_config
from pipeline.app.nightly import dag_tasks
from pipeline.app.nightly import run as nightly_run
from pipeline.core import blas_policy
from pipeline.core.openmp_policy import VARIABLE


class _Report:
    def __init__(self, stage: str) -> None:
        self.outcomes, self.messages, self.already_done = {stage: "ran"}, {stage: ""}, []


@pytest.mark.parametrize(("stage", "policy"), [("embed", "PASSIVE"), ("index", None)])
def test_only_the_embed_task_sets_the_wait_policy(stage: str, policy: str | None, monkeypatch) -> None:
    for variable in (VARIABLE, blas_policy.VARIABLE):
        monkeypatch.setenv(variable, "")  # recorded, so that teardown removes what the task sets
        monkeypatch.delenv(variable)
    monkeypatch.setattr(nightly_config, "load_config", lambda path, root=None: object())
    ran = []

    def run_nightly(config, run, stages, **_):
        ran.append(stages)
        return _Report(stage)

    monkeypatch.setattr(nightly_run, "run_nightly", run_nightly)
    context = {"params": {"config": "nightly.yaml", "root": "data"}, "logical_date": dt.datetime(2026, 11, 29)}
    out = dag_tasks.run_dag_task(stage, context)
    assert ran == [[stage]] and out["run"] == "2026-11-29" and out["outcome"] == "ran"
    assert os.environ.get(VARIABLE) == policy
    assert os.environ.get(blas_policy.VARIABLE) == blas_policy.openblas_core(blas_policy.cpu_flags())  # every task
