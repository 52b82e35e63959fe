"""The embed stage's OpenMP wait policy: set before torch loads, never over the user's own choice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.core.openmp_policy import VARIABLE, sleep_when_idle

PROBE = (
    "from pipeline.core.openmp_policy import sleep_when_idle; followed = sleep_when_idle(); import torch, os; "
    "print(followed, os.environ['OMP_WAIT_POLICY'])"
)


def _probe(env_policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if env_policy is not None:
        env[VARIABLE] = env_policy
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout


def test_a_fresh_process_gets_passive_before_torch_loads() -> None:
    assert _probe(None).split() == ["True", "PASSIVE"]


def test_the_users_own_policy_is_kept() -> None:
    assert _probe("ACTIVE").split() == ["False", "ACTIVE"]


def test_after_torch_loaded_only_children_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch  # noqa: F401  (loaded in this test process already; made explicit)

    monkeypatch.setenv(VARIABLE, "")  # recorded, so that teardown removes what the call sets
    monkeypatch.delenv(VARIABLE)
    assert sleep_when_idle() is False
    assert os.environ[VARIABLE] == "PASSIVE"
