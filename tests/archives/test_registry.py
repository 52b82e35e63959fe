"""The concept registry, its CLI, the prompt template sets and --help of every archives command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from archives.prompts import concept_embeddings, concept_sentences, templates
from archives.registry import Concept, load_registry, save_registry, select, slug
from pipeline.app.cli import main


def test_cli_add_list_remove_round_trip(tmp_path: Path, capsys) -> None:
    registry = tmp_path / "concepts.yaml"
    assert main(["concepts", "add", "Traffic light", "--synonym", "stoplight", "--registry", str(registry)]) == 0
    assert main(["concepts", "add", "sky", "--context", "--prompt", "a clear blue sky.", "--root", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["concepts", "list", "--registry", str(registry), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"name": "Traffic light", "synonyms": ["stoplight"]},
        {"name": "sky", "prompts": ["a clear blue sky."], "context": True},
    ]
    assert main(["concepts", "remove", "TRAFFIC LIGHT", "--root", str(tmp_path)]) == 0
    assert [c.name for c in load_registry(registry)] == ["sky"]
    assert load_registry(registry)[0].context is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["concepts", "add", "SKY"], "already in the registry"),
        (["concepts", "remove", "dog"], "no concept named 'dog'"),
    ],
)
def test_cli_errors(tmp_path: Path, argv: list[str], message: str, capsys) -> None:
    save_registry(tmp_path / "concepts.yaml", [Concept("sky", context=True)])
    assert main([*argv, "--root", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_registry_needs_a_path(capsys) -> None:
    assert main(["concepts", "list"]) == 2
    assert "--registry FILE or --root DIR" in capsys.readouterr().err


def test_registry_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("concepts:\n- name: a\n  colour: red\n")
    with pytest.raises(ValueError, match="unknown fields"):
        load_registry(path)
    path.write_text("concepts:\n- name: Red car\n- name: red-car\n")
    with pytest.raises(ValueError, match="share the folder 'red-car'"):
        load_registry(path)
    with pytest.raises(ValueError, match="unknown concept"):
        select([Concept("a")], ["b"])
    with pytest.raises(ValueError, match="registry is empty"):
        select([], None)


def test_slug() -> None:
    assert slug("Traffic light") == "traffic-light"
    assert slug("  Crème brûlée / dessert ") == "creme-brulee-dessert"
    with pytest.raises(ValueError, match="no letters"):
        slug("!!!")


def test_template_sets() -> None:
    assert len(templates("reco")) == 85 and "this is one {} in the scene." in templates("reco")
    assert len(templates("car")) == 15 and templates("zegclip") == ("a photo of a {}.",)
    assert all(t.count("{}") == 1 for name in ("reco", "car", "zegclip", "toy") for t in templates(name))
    with pytest.raises(ValueError, match="unknown template set"):
        templates("imagenet")
    sentences = concept_sentences(Concept("ring", ("band",), ("a gold ring.",)), "zegclip")
    assert sentences == ["a photo of a ring.", "a photo of a band.", "a gold ring."]


def test_concept_embeddings_average_every_sentence(toy_model) -> None:
    from pipeline.toy.quality import text_embeddings

    plain, rich = Concept("circle"), Concept("circle", ("ring",), ("a red circle on grass.",))
    emb = concept_embeddings(toy_model, [plain, rich], "toy")  # (2, d)
    assert emb.shape == (2, toy_model.embed_dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], text_embeddings(toy_model, ["circle"]).numpy()[0], atol=1e-5)
    sentences = concept_sentences(rich, "toy")
    assert len(sentences) == 9  # 4 templates x (name + synonym) + 1 prompt
    each = text_embeddings(toy_model, sentences, ("{}",)).numpy()  # (9, d), unit rows
    mean = each.mean(0)
    np.testing.assert_allclose(emb[1], mean / np.linalg.norm(mean), atol=1e-5)
    assert float(emb[0] @ emb[1]) < 0.999  # the synonym and the prompt moved it


@pytest.mark.parametrize(
    "argv", [["concepts"], ["concepts", "add"], ["concepts", "list"], ["archive"], ["archive", "diff"]]
)
def test_help(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith("usage: coarchive " + " ".join(argv))
    if argv == ["archive"]:
        assert "--dedup-threshold" in out and "diff" in out
    if argv == ["archive", "diff"]:
        assert "run_a" in out and "--json" in out
