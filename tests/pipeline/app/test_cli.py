"""Every command has --help, and bad input ends in a one-line error and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.app.cli import main
from pipeline.core.blas_policy import cpu_flags, openblas_core

COMMANDS = [
    [],
    ["toy"],
    ["toy", "generate"],
    ["toy", "train"],
    ["toy", "eval"],
    ["ingest"],
    ["embed"],
    ["index"],
    ["query"],
    ["demo"],
]


@pytest.mark.parametrize("words", COMMANDS)
def test_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: coarchive" in capsys.readouterr().out


def test_top_level_help_lists_the_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.app.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert all(word in out.stdout for word in ("toy", "ingest", "embed", "index", "query", "demo"))


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["toy", "generate", "--out", "{tmp}", "--pool-size", "-3"], "non-negative"),
        (["toy", "generate", "--out", "{tmp}", "--shard-size", "0"], "shard_size"),
        (["toy", "generate", "--out", "{tmp}", "--things", "circle,blob"], "blob"),
        (["toy", "eval", "--model", "toy:/no/such.safetensors"], "not found"),
        (["toy", "train", "--out", "{tmp}/w.safetensors", "--steps", "0"], "steps"),
    ],
)
def test_bad_input_is_one_clear_line(words, message, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--quiet", *[w.replace("{tmp}", str(tmp_path)) for w in words]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("coarchive: error:") and message in err and "\n" not in err


def _pool(toy_world: Path, folder: Path, shards: tuple[str, ...]) -> Path:
    """A pool holding a copy of some of the toy world's shards."""
    folder.mkdir(exist_ok=True)
    for stem in shards:
        for suffix in (".tar", ".parquet"):
            shutil.copy(toy_world / "pool" / f"{stem}{suffix}", folder / f"{stem}{suffix}")
    return folder


def test_index_incremental_adds_new_shards_to_the_trained_index(toy_world: Path, tmp_path: Path, capsys) -> None:
    pool, root = _pool(toy_world, tmp_path / "pool", ("00000", "00001")), tmp_path / "root"
    embed = ["--quiet", "embed", "--pool", str(pool), "--root", str(root), "--model", "toy"]
    assert main(embed) == 0 and main(["--quiet", "index", "--root", str(root), "--model", "toy"]) == 0
    index_dir = root / "index" / "toy" / "v1"
    trained = (index_dir / "trained.index").read_bytes()
    old_block = (index_dir / "blocks" / "00000.index").stat()
    _pool(toy_world, pool, ("00002",))
    assert main(embed) == 0
    capsys.readouterr()
    assert main(["--quiet", "index", "--root", str(root), "--model", "toy", "--incremental"]) == 0
    out = capsys.readouterr().out
    info = json.loads((index_dir / "index.json").read_text())
    assert info["count"] == 120 and info["shards"] == [0, 1, 2] and info["retrained_because"] is None
    assert (index_dir / "trained.index").read_bytes() == trained  # 2 lists trained on 100 vectors, not 3 on 120
    new_block = (index_dir / "blocks" / "00000.index").stat()
    assert (new_block.st_ino, new_block.st_mtime_ns) == (old_block.st_ino, old_block.st_mtime_ns)
    assert "incremental: added 1 new shard to the trained index" in out


def test_embed_without_a_model_is_an_error_naming_both_ways(toy_world: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("COARCHIVE_MODEL", raising=False)
    code = main(["--quiet", "embed", "--pool", str(toy_world / "pool"), "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("coarchive: error:") and "\n" not in err
    assert "--model" in err and "COARCHIVE_MODEL" in err and not (tmp_path / "embeddings").exists()


def test_later_stages_take_the_model_from_the_env_or_the_root(toy_world: Path, tmp_path: Path, capsys, monkeypatch):
    pool, root = _pool(toy_world, tmp_path / "pool", ("00002",)), tmp_path / "root"
    monkeypatch.setenv("COARCHIVE_MODEL", "toy")
    assert main(["--quiet", "embed", "--pool", str(pool), "--root", str(root)]) == 0
    assert "coarchive embed: model toy (from COARCHIVE_MODEL)" in capsys.readouterr().err
    monkeypatch.delenv("COARCHIVE_MODEL")
    assert main(["--quiet", "index", "--root", str(root)]) == 0
    assert f"coarchive index: model toy (found in {root / 'embeddings'})" in capsys.readouterr().err
    assert main(["--quiet", "query", "circle", "--root", str(root), "-k", "3"]) == 0
    captured = capsys.readouterr()
    assert f"coarchive query: model toy (found in {root / 'index'})" in captured.err and "circle" in captured.out
    other = root / "embeddings" / "ViT-B-32__openai"
    other.mkdir()
    shutil.copy(root / "embeddings" / "toy" / "00002.parquet", other / "00002.parquet")
    assert main(["--quiet", "index", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "several models" in err and "ViT-B-32__openai, toy" in err and "\n" not in err
    assert main(["--quiet", "index", "--root", str(root), "--model", "toy"]) == 0  # --model wins


def test_a_checkpoint_model_is_found_again_from_the_root(toy_world: Path, toy_model, tmp_path: Path, capsys) -> None:
    import torch

    checkpoint = tmp_path / "weights" / "copy.pt"
    checkpoint.parent.mkdir()
    torch.save(toy_model.model.state_dict(), checkpoint)
    ref = f"coarchive-toy-vit:{checkpoint}"
    pool, root = _pool(toy_world, tmp_path / "pool", ("00002",)), tmp_path / "root"
    assert main(["--quiet", "embed", "--pool", str(pool), "--root", str(root), "--model", ref]) == 0
    capsys.readouterr()
    assert main(["--quiet", "index", "--root", str(root)]) == 0
    assert f"coarchive index: model {ref} (found in" in capsys.readouterr().err


@pytest.mark.parametrize(
    "words",
    [
        ["demo", "--out", "s3://bucket/demo"],
        ["toy", "train", "--out", "s3://bucket/weights.safetensors"],
        ["car", "trace", "photo.jpg", "--concepts", "a,b", "--bank", "file:///x"],
    ],
)
def test_a_url_where_a_command_takes_a_local_path_is_one_line(words, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["--quiet", *words])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "is a URL" in err, err
    assert f"coarchive {words[0]}" in err and "takes a local path there" in err
    assert list(tmp_path.iterdir()) == []  # no folder named after the scheme


def test_embed_takes_a_url_root(toy_world: Path, tmp_path: Path) -> None:
    pool = _pool(toy_world, tmp_path / "pool", ("00002",))
    assert (
        main(["--quiet", "embed", "--pool", f"file://{pool}", "--root", f"file://{tmp_path}/r", "--model", "toy"]) == 0
    )
    assert (tmp_path / "r" / "embeddings" / "toy" / "00002.parquet").is_file()
    assert not (tmp_path / "file:").exists()


def test_embed_lets_idle_openmp_threads_sleep_unless_told_otherwise(toy_world: Path, tmp_path: Path) -> None:
    pool = _pool(toy_world, tmp_path / "pool", ("00000",))
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    lines = {}
    for policy in (None, "ACTIVE"):
        env = base if policy is None else {**base, "OMP_WAIT_POLICY": policy}
        command = [sys.executable, "-m", "pipeline.app.cli", "--verbose", "embed", "--pool", str(pool)]
        command += ["--root", str(tmp_path / f"root_{policy}"), "--model", "toy"]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines[policy] = [line for line in proc.stderr.splitlines() if "OMP_WAIT_POLICY" in line]
    assert len(lines[None]) == 1 and "OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep" in lines[None][0]
    assert len(lines["ACTIVE"]) == 1 and "OMP_WAIT_POLICY=ACTIVE as given" in lines["ACTIVE"][0]


@pytest.mark.skipif(openblas_core(cpu_flags()) is None, reason="no AVX-512 or AVX2: OpenBLAS's own detection is kept")
def test_every_command_names_faiss_openblas_kernel_unless_told_otherwise(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    lines = {}
    for core in (None, "Haswell"):
        env = base if core is None else {**base, "OPENBLAS_CORETYPE": core}
        command = [sys.executable, "-m", "pipeline.app.cli", "--verbose", "index", "--root", str(tmp_path / "none")]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]  # no embeddings there: the command still named the kernel
        lines[core] = [line for line in proc.stderr.splitlines() if "OPENBLAS_CORETYPE" in line]
    assert len(lines[None]) == 1 and f"OPENBLAS_CORETYPE={openblas_core(cpu_flags())}: faiss" in lines[None][0]
    assert len(lines["Haswell"]) == 1 and "OPENBLAS_CORETYPE=Haswell as given" in lines["Haswell"][0]
