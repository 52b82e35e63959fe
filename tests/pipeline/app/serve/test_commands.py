"""`coarchive serve` on the command line: --help, and bad input as one line on stderr with exit status 2."""

from __future__ import annotations

import pytest

from pipeline.app.cli import main


def test_help_names_the_safe_defaults(capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--root" in text and "--token" in text and "127.0.0.1" in text


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve", "--root", "/no/such/root"], "data root not found: /no/such/root"),
        (["serve", "--root", ".", "--host", "0.0.0.0"], "set --token"),
        (["serve", "--root", ".", "--token", "short"], "at least 8 characters"),
        (["serve", "--root", ".", "--version", "../v1"], "bad index version"),
        (["serve", "--root", ".", "--port", "70000"], "bad port 70000"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coarchive: error: ") and words in err and "\n" not in err


def test_missing_root_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve"])
    assert done.value.code == 2 and "--root" in capsys.readouterr().err
