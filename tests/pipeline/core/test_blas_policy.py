"""faiss's OpenBLAS kernel: named from the CPU's flags before faiss loads, never over the user's own choice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.blas_policy import VARIABLE, cpu_flags, name_blas_kernel, openblas_core

PROBE = (
    "from pipeline.core.blas_policy import name_blas_kernel; followed = name_blas_kernel(); import faiss, os; "
    "print(followed, os.environ.get('OPENBLAS_CORETYPE', '-'))"
)
HERE = openblas_core(cpu_flags())  # what this machine's CPU gets


def _probe(env_core: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if env_core is not None:
        env[VARIABLE] = env_core
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_the_kernel_follows_the_widest_vector_flags() -> None:
    avx2 = {"sse4_2", "avx", "avx2", "fma"}
    assert openblas_core(avx2 | {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}) == "SkylakeX"
    assert openblas_core(avx2 | {"avx512f"}) == "Haswell"  # AVX-512 without BW/DQ/VL (Knights Landing): not SkylakeX
    assert openblas_core(avx2) == "Haswell"
    assert openblas_core({"sse4_2", "avx"}) is None and openblas_core(set()) is None  # OpenBLAS's own detection


def test_flags_come_from_cpuinfo_and_none_without_it(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.skipif(HERE is None, reason="this CPU has neither AVX-512 nor AVX2: OpenBLAS's own detection is kept")
def test_a_fresh_process_names_the_kernel_before_faiss_loads() -> None:
    assert _probe(None) == ["True", HERE]


def test_the_users_own_kernel_is_kept() -> None:
    assert _probe("Haswell") == ["False", "Haswell"]


@pytest.mark.skipif(HERE is None, reason="this CPU has neither AVX-512 nor AVX2: OpenBLAS's own detection is kept")
def test_after_faiss_loaded_only_children_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss  # noqa: F401  (loaded in this test process already; made explicit)

    monkeypatch.setenv(VARIABLE, "")  # recorded, so that teardown removes what the call sets
    monkeypatch.delenv(VARIABLE)
    assert name_blas_kernel() is False
    assert os.environ[VARIABLE] == HERE
