"""Model references parse, and every model (toy, local checkpoint, random-init real architecture) loads one way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.core.models import ModelRef, load_model, toy_checkpoint, toy_weights_path


def test_model_ref_parsing_and_ids() -> None:
    assert ModelRef.parse("toy") == ModelRef("toy")
    assert ModelRef.parse("ViT-B-16:openai") == ModelRef("ViT-B-16", "openai")
    assert ModelRef.parse("ViT-B-16") == ModelRef("ViT-B-16", None)
    assert ModelRef.parse("local-dir:/m") == ModelRef("local-dir:/m")
    assert ModelRef("ViT-B-16", "openai").model_id == "ViT-B-16__openai"
    a, b = ModelRef("ViT-B-16", "/x/a/ckpt.pt"), ModelRef("ViT-B-16", "/x/b/ckpt.pt")
    assert a.model_id != b.model_id and "/" not in a.model_id
    with pytest.raises(ValueError):
        ModelRef.parse("  ")


def test_toy_model_loads_offline_and_embeds(toy_model) -> None:
    assert toy_model.image_size == 96 and toy_model.embed_dim == 128
    with torch.no_grad():
        text = toy_model.model.encode_text(toy_model.tokenizer(["a photo of a circle."]))
        image = toy_model.model.encode_image(torch.zeros(2, 3, 96, 96))
    assert text.shape == (1, 128) and image.shape == (2, 128)


def test_expanded_weights_match_the_bundled_fp16(toy_model) -> None:
    from safetensors.torch import load_file

    compact = load_file(str(toy_weights_path()))
    full = load_file(str(toy_checkpoint()))
    ids = compact["token_embedding.ids"]
    assert torch.equal(full["token_embedding.weight"][ids], compact["token_embedding.rows"].float())
    loaded = toy_model.model.state_dict()["visual.proj"]
    assert torch.equal(loaded, compact["visual.proj"].float())


def test_a_local_checkpoint_loads_through_the_same_path(tmp_path: Path, toy_model) -> None:
    path = tmp_path / "copy.pt"
    torch.save(toy_model.model.state_dict(), path)
    again = load_model(f"coarchive-toy-vit:{path}", device="cpu")
    tokens = toy_model.tokenizer(["a red star."])
    with torch.no_grad():
        assert torch.equal(again.model.encode_text(tokens), toy_model.model.encode_text(tokens))


def test_real_architecture_random_init_loads() -> None:
    loaded = load_model("ViT-B-32", device="cpu")
    assert loaded.image_size == 224 and loaded.embed_dim == 512


@pytest.mark.parametrize("ref", ["NoSuchArch", "ViT-B-32:/no/such/file.pt", "toy:/no/such/weights.safetensors"])
def test_bad_model_refs_fail_clearly(ref: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError)):
        load_model(ref, device="cpu")


def test_model_ids_read_back_only_when_the_reference_is_certain(tmp_path: Path) -> None:
    from pipeline.core.model_choice import MODEL_RECORD, model_record, reference_of

    assert reference_of(tmp_path, "toy") == ModelRef("toy")
    assert reference_of(tmp_path, "ViT-B-16__openai") == ModelRef("ViT-B-16", "openai")
    assert reference_of(tmp_path, "ViT-B-32__random") == ModelRef("ViT-B-32")
    checkpoint = ModelRef("coarchive-toy-vit", str(tmp_path / "w" / "copy.pt"))
    assert reference_of(tmp_path, checkpoint.model_id) is None  # a checkpoint's id is a digest: no record, no guess
    folder = tmp_path / "embeddings" / checkpoint.model_id
    folder.mkdir(parents=True)
    (folder / MODEL_RECORD).write_text(json.dumps(model_record(checkpoint)))
    assert reference_of(tmp_path, checkpoint.model_id) == checkpoint


def test_the_env_variable_comes_after_the_option(tmp_path: Path, monkeypatch) -> None:
    from pipeline.core.model_choice import resolve_model

    monkeypatch.setenv("COARCHIVE_MODEL", "ViT-B-32:openai")
    assert resolve_model("toy", tmp_path).ref == ModelRef("toy")
    assert resolve_model(None, tmp_path).ref == ModelRef("ViT-B-32", "openai")
    monkeypatch.delenv("COARCHIVE_MODEL")
    with pytest.raises(ValueError, match="none found"):
        resolve_model(None, tmp_path, "embeddings", "*.parquet")


def test_openai_tags_get_the_quick_gelu_they_were_trained_with() -> None:
    from pipeline.core.models import needs_quick_gelu

    assert needs_quick_gelu("ViT-B-16", "openai")  # open_clip's ViT-B-16 config says GELU; the weights need QuickGELU
    assert not needs_quick_gelu("ViT-B-16-quickgelu", "openai")  # the config already has it
    assert not needs_quick_gelu("ViT-B-16", "laion2b_s34b_b88k")  # trained with GELU
    assert not needs_quick_gelu("ViT-B-16", None) and not needs_quick_gelu("ViT-B-16", "/models/vit_b16.pt")
