"""URL roots on the command line, without a server: memory:// roots (one process), file:// URLs (a local path),
--cache-dir before or after the command, paths shown as URLs, and which commands take a URL where."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
import yaml

from pipeline.app.cli import build_parser, main
from pipeline.app.url_roots import URL_OPTIONS, command_of, url_dests


def test_a_memory_root_is_read_and_written_through_a_local_copy(tmp_path: Path, capsys) -> None:
    root = f"memory://b{uuid.uuid4().hex[:8]}/root"
    assert main(["--quiet", "--cache-dir", str(tmp_path / "copies"), "concepts", "add", "sky", "--root", root]) == 0
    assert capsys.readouterr().out.strip() == f"added 'sky' to {root}/concepts.yaml"  # the URL, not the copy
    assert main(["concepts", "add", "heart", "--synonym", "love", "--root", root, "--cache-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    mem = fsspec.filesystem("memory")
    names = [c["name"] for c in yaml.safe_load(mem.cat(f"{root.removeprefix('memory://')}/concepts.yaml"))["concepts"]]
    assert names == ["sky", "heart"]  # the second command, with another cache folder, read the first one's file
    assert main(["concepts", "list", "--root", root, "--cache-dir", str(tmp_path / "third")]) == 0
    assert "love" in capsys.readouterr().out
    assert list((tmp_path / "copies").iterdir())  # the copies live where --cache-dir says


def test_an_error_names_the_url_not_the_local_copy(tmp_path: Path, capsys) -> None:
    root = f"memory://b{uuid.uuid4().hex[:8]}/root"
    assert main(["--quiet", "--cache-dir", str(tmp_path), "archive", "--root", root, "--run", "r1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the line naming the local copy
    assert err == f"coarchive: error: concept registry not found: {root}/concepts.yaml; add concepts with " + (
        "'coarchive concepts add'"
    )


def test_a_file_url_is_the_local_path(tmp_path: Path, capsys) -> None:
    assert main(["--quiet", "concepts", "add", "sky", "--root", f"file://{tmp_path}/r"]) == 0
    assert (tmp_path / "r" / "concepts.yaml").is_file() and not (tmp_path / "file:").exists()


def test_cache_dir_is_documented_everywhere(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    assert "--cache-dir DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--refresh SECONDS" in capsys.readouterr().out


def test_every_url_option_is_an_option_of_its_command() -> None:
    """The table names real commands and real options (a renamed option would silently stop taking URLs)."""
    parser = build_parser()
    for command, options in URL_OPTIONS.items():
        words = command.split()
        argv = [*words, *(["--out", "x"] if words[:2] == ["bank", "import-reco"] else [])]
        args = _parse_partial(parser, argv)
        assert command_of(args) == command
        for option in options:
            assert hasattr(args, option.dest), (command, option.dest)
        assert set(url_dests(command)) >= {o.dest for o in options}


def _parse_partial(parser, argv: list[str]):
    """The namespace of `argv`'s command with its required options filled in."""
    required = {
        "ingest": ["--urls", "u", "--pool", "p"],
        "index": ["--root", "r"],
        "query": ["--root", "r"],
        "cosegment": ["--root", "r", "--run", "x"],
        "eval": ["--dataset", "toy", "--data-root", "d"],
        "run": ["--config", "c"],
        "serve": ["--root", "r"],
        "toy": ["--out", "o"],
        "bank": ["dir"] if argv[1:2] == ["show"] else ["pickle"],
        "archive": ["a", "b"] if argv[1:2] == ["diff"] else [],
        "concepts": ["name"] if argv[1:2] in (["add"], ["remove"]) else [],
    }
    return parser.parse_args([*argv, *required.get(argv[0], [])])
