"""`coarchive cosegment` and `coarchive bank`: --help, end to end on archives in the documented layout, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from archives.archive import ITEMS_SCHEMA, image_member, images_tar_bytes
from pipeline.app.cli import main
from pipeline.toy.export import jpeg_bytes
from pipeline.toy.world import WorldSpec, render_scene
from segment.bank import SegmentBank
from segment.bank_from_archives import archive_text_embedding, prompt_embedding

CONCEPTS = {"grass": True, "sky": True, "circle": False, "square": False}  # concept -> context
PER_ARCHIVE = 5


@pytest.mark.parametrize("words", [["cosegment"], ["bank"], ["bank", "show"], ["bank", "import-reco"]])
def test_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: coarchive" in capsys.readouterr().out


def write_archive(run_dir: Path, concept: str, context: bool, scenes: list, prompts: list[str] | None) -> None:
    """One archive folder as the archive builder writes it: items.parquet, query.json, images.tar."""
    folder = run_dir / concept
    folder.mkdir(parents=True)
    rows = [(rank, idx, 1.0 - rank / 100, f"{idx:09d}", f"toy://{idx}") for rank, (idx, _) in enumerate(scenes, 1)]
    table = pa.Table.from_pylist([dict(zip(ITEMS_SCHEMA.names, r, strict=True)) for r in rows], schema=ITEMS_SCHEMA)
    pq.write_table(table, folder / "items.parquet")
    query = {"concept": concept, "context": context}
    if prompts is not None:
        query["prompts"] = prompts
    (folder / "query.json").write_text(json.dumps(query))
    members = [(image_member(r[0], r[3]), jpeg_bytes(scene.image)) for r, (_, scene) in zip(rows, scenes, strict=True)]
    (folder / "images.tar").write_bytes(images_tar_bytes(members))


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = WorldSpec()
    root = tmp_path_factory.mktemp("segroot")
    run_dir = root / "archives" / "toy" / "r1"
    found: dict[str, list] = {c: [] for c in CONCEPTS}
    for idx in range(400):
        scene = render_scene(spec, 11, idx)
        present = set(scene.stuff) | {shape for shape, _ in scene.things}
        for c in CONCEPTS:
            if c in present and len(found[c]) < PER_ARCHIVE:
                found[c].append((idx, scene))
        if all(len(v) == PER_ARCHIVE for v in found.values()):
            break
    for i, (c, context) in enumerate(CONCEPTS.items()):
        prompts = None if i == 0 else ["a photo of a {}.", f"there is a {c} in the scene."]
        write_archive(run_dir, c, context, found[c], prompts)
    return root


def test_cosegment_end_to_end(archive_root: Path, toy_model, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--quiet", "cosegment", "--root", str(archive_root), "--model", "toy", "--run", "r1", "--encoder", "clip"]
    assert main(args) == 0
    assert torch.is_grad_enabled()  # the command leaves the process as it found it
    out = capsys.readouterr().out
    assert "wrote a bank of 4 concepts (20 images" in out and "2 context concepts" in out
    bank = SegmentBank.load(archive_root / "banks" / "toy" / "r1")
    assert bank.concepts == sorted(CONCEPTS)  # archive folder order
    assert bank.encoder == "clip:toy" and bank.method == "reco-cosegment" and bank.dim == 128
    assert bank.params["context"] == ["grass", "sky"] and bank.params["lgc"] and bank.params["ce"]
    assert bank.params["build_order"][:2] == ["grass", "sky"]
    info = bank.provenance["concepts"]["circle"]
    assert info["images"] == PER_ARCHIVE and len(info["seeds"]) == PER_ARCHIVE and info["archive"].endswith("circle")
    assert bank.provenance["run"] == "r1" and bank.provenance["model_id"] == "toy"
    prompts = ["a photo of a {}.", "there is a square in the scene."]
    assert torch.allclose(bank.text_embeddings[3], prompt_embedding(toy_model, "square", prompts), atol=1e-5)
    assert torch.allclose(bank.text_embeddings[1], prompt_embedding(toy_model, "grass", None), atol=1e-5)
    # The CLIP encoder's references live in the joint space: a stuff reference is nearest its own class name.
    for c in ("grass", "sky"):
        assert int((bank.text_embeddings @ bank.reference(c)).argmax()) == bank.index(c)

    assert main(["bank", "show", str(archive_root / "banks" / "toy" / "r1")]) == 0
    shown = capsys.readouterr().out
    assert "encoder clip:toy" in shown and all(c in shown for c in CONCEPTS)


def test_cosegment_options_and_timm_encoder(archive_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bank"
    args = ["--quiet", "cosegment", "--root", str(archive_root), "--run", "r1", "--out", str(out)]
    opts = ["--encoder", "timm:vit_tiny_patch16_224", "--no-ce", "--concepts", "sky,circle", "--k", "3"]
    assert main([*args, *opts]) == 0
    bank = SegmentBank.load(out)
    assert bank.concepts == ["sky", "circle"] and bank.dim == 192 and bank.encoder == "timm:vit_tiny_patch16_224"
    assert bank.params["ce"] is False and bank.params["lgc"] is True and bank.params["saliency"] == "clip:toy"
    assert bank.provenance["concepts"]["circle"]["images"] == 3
    assert main([*args, "--concepts", "sky,heart"]) == 2
    assert "no archive for heart" in capsys.readouterr().err
    assert main([*args, "--encoder", "timm:vit_tiny_patch16_224", "--encoder-checkpoint", "/nope.pth"]) == 2
    assert "not found: /nope.pth" in capsys.readouterr().err
    assert main(["cosegment", "--root", str(tmp_path), "--run", "r1", "--model", "toy"]) == 2
    assert "archive run folder not found" in capsys.readouterr().err


def test_bank_import_reco(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pickle

    with (tmp_path / "reco.pkl").open("wb") as f:
        pickle.dump({"tree": torch.randn(384), "road": torch.randn(384)}, f)
    assert main(["bank", "import-reco", str(tmp_path / "reco.pkl"), "--out", str(tmp_path / "b")]) == 0
    assert "imported 2 concepts of dim 384" in capsys.readouterr().out
    assert SegmentBank.load(tmp_path / "b").concepts == ["tree", "road"]
    assert main(["bank", "show", str(tmp_path / "missing")]) == 2
    assert "not a segment bank" in capsys.readouterr().err


def test_text_embedding_follows_the_archive_builders_query(toy_model) -> None:
    from archives.prompts import concept_embeddings
    from archives.registry import Concept

    query = {"concept": "heart", "synonyms": ["love heart"], "prompts": ["a heart shape."], "templates": "toy"}
    expected = concept_embeddings(toy_model, [Concept("heart", ("love heart",), ("a heart shape.",))], "toy")[0]
    got = archive_text_embedding(toy_model, query)
    assert got.shape == (128,) and torch.allclose(got, torch.from_numpy(expected), atol=1e-6)
    fallback = archive_text_embedding(toy_model, {"concept": "heart"})  # no template set: the toy templates
    assert torch.allclose(fallback, prompt_embedding(toy_model, "heart", []))


def test_cosegment_defaults_to_the_penultimate_clip_tokens(archive_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "bank"
    assert main(["--quiet", "cosegment", "--root", str(archive_root), "--run", "r1", "--out", str(out)]) == 0
    bank = SegmentBank.load(out)
    assert bank.encoder == "clip-penultimate:toy" and bank.dim == 128 and bank.params["lgc"]
    assert bank.params["saliency"] == "clip:toy"  # LGC saliency still comes from the MaskCLIP value path


def test_cosegment_seed_rule_reaches_the_bank(archive_root: Path, tmp_path: Path) -> None:
    base = ["--quiet", "cosegment", "--root", str(archive_root), "--run", "r1", "--concepts", "sky,circle"]
    assert main([*base, "--out", str(tmp_path / "paper")]) == 0
    assert main([*base, "--out", str(tmp_path / "official"), "--seed-rule", "official"]) == 0
    paper, official = SegmentBank.load(tmp_path / "paper"), SegmentBank.load(tmp_path / "official")
    assert paper.params["seed_rule"] == "paper" and official.params["seed_rule"] == "official"
    assert not torch.equal(paper.references, official.references)  # the rule changes which pixels seed
