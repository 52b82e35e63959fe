"""Every bench script has a smoke test here, so none can stop running unnoticed; helpers are named explicitly.

A script is any module of bench/ (sub-packages included) but package `__init__`s, private modules (`_name.py`, which
may not have a `__main__` block) and HELPERS below. Its smoke test is tests/bench/test_<dotted_name_with_underscores>.py
and calls run_bench("<dotted name>", ...).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.bench.runner import REPO

BENCH = REPO / "bench"
HERE = Path(__file__).parent
MAIN = 'if __name__ == "__main__":'
HELPERS = {  # public modules of bench/ that a user does not run, each with where it is exercised
    "peakmem": "run_measured, used by embed_throughput and index_build; tested in test_peakmem.py",
    "cr_peer": "runs in the peer virtualenv, started by embed_throughput (test_embed_throughput_runs_clip_retrieval)",
}


def _path(module: str) -> Path:
    return BENCH.joinpath(*module.split(".")).with_suffix(".py")


def _modules() -> list[str]:
    return sorted(".".join(p.relative_to(BENCH).with_suffix("").parts) for p in BENCH.rglob("*.py"))


def _private(module: str) -> bool:
    return module.rsplit(".", 1)[-1].startswith("_")


def _scripts() -> list[str]:
    return [m for m in _modules() if not _private(m) and m not in HELPERS]


def test_every_bench_script_has_a_smoke_test() -> None:
    missing = []
    for name in _scripts():
        test = HERE / f"test_{name.replace('.', '_')}.py"
        if not test.is_file() or not re.search(rf"run_bench\(\s*\"{re.escape(name)}\"", test.read_text()):
            missing.append(f"{_path(name).relative_to(REPO)}: add {test.relative_to(REPO)} calling run_bench({name!r})")
    assert not missing, "bench scripts without a smoke test:\n" + "\n".join(missing)


def test_every_bench_script_runs_as_a_module() -> None:
    for name in _scripts():
        assert MAIN in _path(name).read_text(), f"{_path(name)} cannot run as python -m bench.{name}"


def test_private_modules_are_not_scripts() -> None:
    for name in filter(_private, _modules()):
        assert MAIN not in _path(name).read_text(), f"{_path(name)} has a __main__ block: rename it and smoke-test it"


def test_helpers_are_real_and_used() -> None:
    modules = _modules()
    scripts = "".join(_path(m).read_text() for m in _scripts())
    for name in HELPERS:
        assert name in modules, f"HELPERS names bench/{name}.py, which no longer exists"
        assert name in scripts, f"bench/{name}.py is listed as a helper but no script uses it"
