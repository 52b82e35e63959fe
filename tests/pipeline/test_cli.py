"""Every command has --help, and bad input ends in a one-line error and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main

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
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True, check=True)
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
