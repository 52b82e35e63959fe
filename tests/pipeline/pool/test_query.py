"""`coarchive query`: text and image queries in one batch, JSON and HTML output, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.app.cli import main


@pytest.fixture(scope="module")
def indexed_root(toy_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    assert main(["--quiet", "embed", "--pool", str(toy_world / "pool"), "--root", str(root), "--model", "toy"]) == 0
    assert main(["--quiet", "index", "--root", str(root)]) == 0  # the model is found in ROOT/embeddings/
    return root


def test_text_and_image_queries_json_and_html(indexed_root: Path, toy_world: Path, tmp_path: Path, capfd) -> None:
    """capfd, not capsys: a library line printed from C (faiss opening on-disk lists) would break the JSON."""
    image = next((toy_world / "benchmark" / "images").glob("*.jpg"))
    html = tmp_path / "results.html"
    code = main(
        [
            "query",
            "circle",
            "star",
            "--image",
            str(image),
            "--root",
            str(indexed_root),
            "-k",
            "4",
            "--json",
            "--pool",
            str(toy_world / "pool"),
            "--html",
            str(html),
        ]
    )
    results = json.loads(capfd.readouterr().out)
    assert code == 0 and list(results) == ["circle", "star", f"image {image}"]
    assert all(len(hits) == 4 for hits in results.values())
    assert [h["rank"] for h in results["circle"]] == [1, 2, 3, 4]
    assert sum("circle" in h["caption"] for h in results["circle"]) >= 3
    assert html.read_text().count("data:image/png") == 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [([], "at least one"), (["--image", "/no/such.jpg"], "not found"), (["x", "-k", "0"], "k must be positive")],
)
def test_query_errors(indexed_root: Path, extra: list[str], message: str, capsys) -> None:
    assert main(["query", *extra, "--root", str(indexed_root)]) == 2
    assert message in capsys.readouterr().err


def test_query_without_an_index(tmp_path: Path, capsys) -> None:
    assert main(["query", "circle", "--root", str(tmp_path)]) == 2
    assert "run 'coarchive index' first" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_command_quietly(indexed_root: Path) -> None:
    """`coarchive query ... | head`: no traceback when the pipe closes."""
    import subprocess
    import sys

    from pipeline.toy.world import WorldSpec

    cmd = [sys.executable, "-m", "pipeline.app.cli", "query", *WorldSpec().classes, "--root", str(indexed_root)]
    proc = subprocess.Popen([*cmd, "-k", "100", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"{"
    proc.stdout.close()  # about 200 kB are still to come: more than a pipe holds
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err
